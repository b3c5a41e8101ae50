"""Refund operations.

Refunds never exceed what was captured, also under concurrent requests: txn 1 decides on the PaymentIntent row
as it is — written only while unchanged since it was read (below), or read locked (``FOR UPDATE`` on PostgreSQL;
the ``BEGIN IMMEDIATE`` write lock on SQLite) — and *reserves* the amount in ``amount_refund_pending``; a CHECK
constraint (refunded + pending ≤ received) backs the check in the database itself. The processor is called with
the refund id as idempotency key, and txn 2 moves the reservation into ``amount_refunded`` (success, with a
ledger journal) or releases it (failure). An unknown outcome keeps the reservation until the status sync learns
the answer.

On PostgreSQL txn 1 is optimistic (:func:`paygate.db.optimistic.optimistic_first`): it reads the intent
unlocked and its reservation is a write guarded by the row version it read, so a concurrent change (another
refund's reservation) makes it run again on the intent read locked; the reservation is always decided on the
intent as it is. Txn 1 claims the idempotency key itself; on PostgreSQL txn 2 is then first tried
optimistically on the refund and intent rows as txn 1 wrote them (guarded by their row version, as a payment's
txn 2: see :meth:`paygate.payments.service.PaymentService._record`), and read locked only if either changed
meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import RefundRequest, RefundResult, RefundStatus
from paygate.connectors.errors import ConnectorError
from paygate.db.engine import Database
from paygate.db.optimistic import optimistic_first, optimistic_then_locked
from paygate.db.pagination import list_page
from paygate.db.pgbatch import RowChanged
from paygate.db.tables import refunds
from paygate.events import service as events
from paygate.idempotency.service import Guard, Reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.money import format_minor
from paygate.kit.params import merge_metadata
from paygate.ledger import service as ledger
from paygate.merchants.context import AuthContext
from paygate.payments import repository as pay_repo
from paygate.payments.model import Action, check_action
from paygate.payments.schemas import charge_object
from paygate.refunds import repository as repo
from paygate.refunds.schemas import CreateParams, RefundListParams, UpdateParams, refund_object
from paygate.routing.service import Router

__all__ = ["RefundService", "Sent", "apply_refund_result", "send_to_processor"]


class RefundService:
    def __init__(self, db: Database, router: Router) -> None:
        self.db = db
        self.router = router

    async def retrieve(self, ctx: AuthContext, refund_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return refund_object(await repo.get_refund(conn, ctx, refund_id))

    async def list_refunds(self, ctx: AuthContext, params: RefundListParams) -> dict[str, Any]:
        t = refunds
        scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode]
        if params.payment_intent:
            scope.append(t.c.payment_intent == params.payment_intent)
        if params.charge:
            scope.append(t.c.charge == params.charge)
        async with self.db.read() as conn:
            return await list_page(
                conn, t, scope=scope, params=params, url="/v1/refunds", kind="refund", serialize=refund_object
            )

    async def update(self, ctx: AuthContext, refund_id: str, p: UpdateParams, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            refund = await repo.get_refund(conn, ctx, refund_id, lock=True)
            if p.metadata is not None:
                refund = await repo.update_refund(
                    conn, refund, {"metadata": merge_metadata(refund["metadata"], p.metadata), "updated": clock.now()}
                )
                await events.emit(conn, ctx, "refund.updated", refund_object(refund))
            reply = Reply(200, orjson.dumps(refund_object(refund)))
            await guard.finish(conn, reply.status, reply.body)
            return reply

    async def _intent_id_for(self, conn: AsyncConnection, ctx: AuthContext, p: CreateParams, *, unbound: bool) -> str:
        """The intent the refund is for (``charge`` is looked up: an attempt's intent never changes, so the read
        needs no lock; ``unbound`` in an optimistic transaction, whose reads come before the transaction)."""
        if p.payment_intent and p.charge:
            raise InvalidRequest("You may only specify one of: charge, payment_intent.", param="charge")
        if p.payment_intent:
            return p.payment_intent
        if not p.charge:
            raise InvalidRequest(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
                param="payment_intent",
            )
        attempt = await pay_repo.get_attempt(conn, p.charge, unbound=unbound)
        if attempt is None or attempt["merchant_id"] != ctx.merchant_id or bool(attempt["livemode"]) != ctx.livemode:
            raise ResourceMissing("charge", p.charge, param="charge")
        return str(attempt["intent_id"])

    async def create(self, ctx: AuthContext, p: CreateParams, guard: Guard) -> Reply:
        if guard.recovery:
            return await self._resume(ctx, guard)

        async def txn1(
            conn: AsyncConnection, optimistic: bool
        ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            intent_id = await self._intent_id_for(conn, ctx, p, unbound=optimistic)
            intent, attempt, v = await pay_repo.intent_for_change(
                conn, ctx, intent_id, optimistic=optimistic, param="payment_intent"
            )
            check_action(intent["status"], Action.REFUND, intent_id=intent_id)
            charge_id = intent["latest_charge"]
            if p.charge and p.charge != charge_id:
                raise InvalidRequest(
                    f"Charge {p.charge} was not captured and cannot be refunded.",
                    param="charge",
                    code="charge_not_refundable",
                )
            refundable = intent["amount_received"] - intent["amount_refunded"] - intent["amount_refund_pending"]
            if refundable <= 0:
                raise InvalidRequest(f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
            amount = p.amount if p.amount is not None else refundable
            if amount > refundable:
                cur = intent["currency"]
                raise InvalidRequest(
                    f"Refund amount ({format_minor(amount, cur)} {cur}) is greater than unrefunded amount on "
                    f"charge ({format_minor(refundable, cur)} {cur})",
                    param="amount",
                    code="amount_too_large",
                )
            now = clock.now()
            refund = {
                "id": new_id("re"),
                "merchant_id": ctx.merchant_id,
                "livemode": ctx.livemode,
                "payment_intent": intent_id,
                "charge": charge_id,
                "amount": amount,
                "currency": intent["currency"],
                "status": "pending",
                "reason": p.reason,
                "metadata": jsonx.dumps(p.metadata),
                "failure_reason": None,
                "processor_reference": None,
                "created": now,
                "updated": now,
            }
            await repo.insert_refund(conn, refund)
            intent = await pay_repo.update_intent(
                conn,
                intent,
                {"amount_refund_pending": intent["amount_refund_pending"] + amount, "updated": now},
                version=v.intent,
            )
            await guard.checkpoint(conn, {"op": "refund", "refund": refund["id"]})
            await events.emit(conn, ctx, "refund.created", refund_object(refund))
            assert attempt is not None  # refundable: the intent has a captured charge
            return refund, intent, attempt

        refund, intent, attempt = await optimistic_first(self.db, txn1, rolled_back=guard.rolled_back)
        return await self._send(ctx, refund, guard, Sent(intent, attempt, guard.version))

    async def _send(self, ctx: AuthContext, refund: dict[str, Any], guard: Guard, sent: Sent | None = None) -> Reply:
        """Send ``refund`` to the processor and record the answer (txn 2). ``sent``: the rows as txn 1 wrote them."""
        result = await send_to_processor(self.db, self.router, refund, sent.attempt if sent else None)

        async def record(conn: AsyncConnection, refund: dict[str, Any], sent: Sent | None) -> Reply:
            refund = await apply_refund_result(conn, ctx, refund, result, sent)
            reply = Reply(200, orjson.dumps(refund_object(refund)))
            await guard.finish(conn, reply.status, reply.body)
            return reply

        async def optimistic(conn: AsyncConnection) -> Reply:
            return await record(conn, refund, sent)

        async def locked(conn: AsyncConnection) -> Reply:
            now = await repo.get_refund(conn, ctx, refund["id"], lock=True)
            return await record(conn, now, replace(sent, version=None) if sent else None)

        guarded = sent is not None and sent.version is not None and not isinstance(result, ConnectorError)
        return await optimistic_then_locked(self.db, optimistic if guarded else None, locked)

    async def _resume(self, ctx: AuthContext, guard: Guard) -> Reply:
        rec = guard.recovery or {}
        async with self.db.read() as conn:
            refund = await repo.get_refund(conn, ctx, rec["refund"])
        if refund["status"] == "pending":
            return await self._send(ctx, refund, guard)
        reply = Reply(200, orjson.dumps(refund_object(refund)))
        async with self.db.write() as conn:
            await guard.finish(conn, reply.status, reply.body)
        return reply


async def send_to_processor(
    db: Database, router: Router, refund: dict[str, Any], attempt: dict[str, Any] | None = None
) -> RefundResult | ConnectorError:
    """Send — or re-send: the refund id is the processor idempotency key, so a repeat returns the recorded
    outcome and never refunds twice — ``refund`` to the processor that holds its payment (``attempt``, the
    refunded charge; read when not given)."""
    if attempt is None:
        async with db.read() as conn:
            attempt = await pay_repo.get_attempt(conn, refund["charge"])
    assert attempt is not None
    route = await router.for_attempt(attempt)
    req = RefundRequest(
        idempotency_key=refund["id"],
        refund_id=refund["id"],
        processor_reference=attempt["processor_reference"],
        amount=refund["amount"],
        currency=refund["currency"],
        credentials=route.credentials,
        reason=refund["reason"],
    )
    return await router.invoke(route, lambda: route.connector.refund(req, route.http))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Sent:
    """A refund's intent and charge as its txn 1 left them, and (PostgreSQL, key claimed in txn 1) the row
    version of the intent and the refund that transaction wrote."""

    intent: dict[str, Any]
    attempt: dict[str, Any]
    version: str | None


async def apply_refund_result(
    conn: AsyncConnection,
    ctx: AuthContext,
    refund: dict[str, Any],
    result: RefundResult | ConnectorError,
    sent: Sent | None = None,
) -> dict[str, Any]:
    """txn 2 of a refund (also used by the status sync). Monotonic: only a ``pending`` refund changes.

    ``sent.attempt`` is the refunded charge (read here when not given). With ``sent.version``, ``refund`` and
    ``sent.intent`` are as the transaction of that version wrote them and were not read locked: the refund's and
    the intent's updates are guarded writes (``RowChanged`` where they are sent, nothing written, if either
    changed), and the caller retries on locked rows; without, the intent is read locked here.

    A ``ConnectorError`` (the processor was unreachable, or its answer was lost) changes nothing: the refund stays
    pending (and reserved), the merchant is answered with it as such, and the status sync sends it again under
    the same key until the processor says what became of it — like a Stripe refund that is ``pending``."""
    version = sent.version if sent else None
    if refund["status"] != "pending" or isinstance(result, ConnectorError):
        if version is not None:
            raise RowChanged("the refund given as pending is not")  # decide only on rows read locked
        return refund
    if result.status is RefundStatus.PENDING:
        return await repo.update_refund(
            conn, refund, {"processor_reference": result.processor_reference, "updated": clock.now()}, version=version
        )
    now = clock.now()
    if version is not None:
        assert sent is not None
        intent = sent.intent
    else:
        intent = await pay_repo.get_intent(conn, ctx, refund["payment_intent"], lock=True)
    amount = refund["amount"]
    i_vals: dict[str, Any] = {"amount_refund_pending": intent["amount_refund_pending"] - amount, "updated": now}
    if result.status is RefundStatus.SUCCEEDED:
        i_vals["amount_refunded"] = intent["amount_refunded"] + amount
        # Intent first, as every locked path takes them: with guarded updates, the order the rows are locked in.
        intent = await pay_repo.update_intent(conn, intent, i_vals, version=version)
        refund = await repo.update_refund(
            conn,
            refund,
            {"status": "succeeded", "updated": now, "processor_reference": result.processor_reference},
            version=version,
        )
        attempt = sent.attempt if sent else await pay_repo.get_attempt(conn, refund["charge"])
        assert attempt is not None
        await ledger.post_refund(
            conn,
            ctx,
            intent_id=intent["id"],
            refund_id=refund["id"],
            processor=attempt["processor"],
            amount=amount,
            currency=refund["currency"],
        )
        await events.emit_many(
            conn, ctx, [("charge.refunded", charge_object(attempt, intent)), ("refund.updated", refund_object(refund))]
        )
    else:
        intent = await pay_repo.update_intent(conn, intent, i_vals, version=version)
        refund = await repo.update_refund(
            conn,
            refund,
            {"status": "failed", "updated": now, "failure_reason": result.failure_reason or "unknown"},
            version=version,
        )
        await events.emit(conn, ctx, "refund.failed", refund_object(refund))
    return refund
