"""Applying a verified processor event to paygate's state, monotonically.

Contract of :func:`apply_event` (called by the worker for each queued inbound webhook):

* The payment is found by our idempotency key when the processor echoes it (it is our attempt / refund id),
  else by the processor's reference. No match → ``ignored`` (nothing to change).
* The event is classified against what paygate knows (:func:`classify`):
  ``stale`` — a duplicate, or a late event for a state the payment already left (``authorized`` after
  ``captured``): nothing changes; ``forward`` — news paygate was waiting for (an outcome for a pending/unknown
  attempt, a capture/void paygate asked for): applied; ``conflict`` — the event contradicts paygate
  (``failed`` for a captured payment, a capture paygate never requested): paygate asks the processor
  (``connector.sync``) and applies *that* answer instead of the event.
* Every change goes through the same monotonic functions as synchronous answers
  (:func:`paygate.payments.flows.apply_authorization` / ``apply_capture`` / ``apply_void`` and
  :func:`paygate.refunds.service.apply_refund_result`) inside one write transaction with the rows locked, so
  ledger journals and outbox events follow, and duplicates, late and out-of-order events can never move a
  payment backwards. The processor call (sync) happens before that transaction, never inside it.
* Returns a short outcome string stored on the inbound row for operators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import (
    ConnectorEvent,
    PaymentResult,
    PaymentStatus,
    RefundResult,
    SyncRequest,
)
from paygate.connectors.errors import ConnectorError
from paygate.db.tables import payment_attempts as pa
from paygate.db.tables import refunds as rf
from paygate.merchants.context import AuthContext
from paygate.payments import flows
from paygate.payments import repository as pay_repo
from paygate.refunds import repository as refund_repo
from paygate.refunds.service import apply_refund_result, send_to_processor

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["apply_event", "classify"]

log = structlog.get_logger("paygate.hooks")

_RANK = {"pending": 0, "unknown": 0, "requires_action": 0, "authorized": 1, "captured": 2, "voided": 2, "failed": 2}


def classify(attempt_status: str, pending_op: str | None, event_status: PaymentStatus) -> str:
    """``stale`` | ``forward`` | ``conflict`` for a payment event against the attempt's current state."""
    said = event_status.value
    if said == attempt_status:
        return "stale"
    if attempt_status in ("pending", "unknown", "requires_action"):
        return "stale" if said in ("pending", "requires_action") else "forward"
    if attempt_status == "authorized":
        if said in ("pending", "requires_action"):
            return "stale"
        if (said == "captured" and pending_op == "capture") or (said == "voided" and pending_op == "void"):
            return "forward"
        return "conflict"
    # final states: captured | voided | failed
    if _RANK.get(said, 0) < _RANK[attempt_status]:
        return "stale"
    return "conflict"


def _ctx(row: dict[str, Any]) -> AuthContext:
    return AuthContext(merchant_id=row["merchant_id"], livemode=bool(row["livemode"]), key_kind="secret")


async def _find_attempt(conn: AsyncConnection, connector: str, event: ConnectorEvent) -> dict[str, Any] | None:
    if event.idempotency_key:
        attempt = await pay_repo.get_attempt(conn, event.idempotency_key)
        if attempt is not None and attempt["processor"] == connector:
            return attempt
    if event.processor_reference:
        row = (
            (
                await conn.execute(
                    select(pa).where(pa.c.processor == connector, pa.c.processor_reference == event.processor_reference)
                )
            )
            .mappings()
            .first()
        )
        return dict(row) if row else None
    return None


async def _find_refund(conn: AsyncConnection, event: ConnectorEvent) -> dict[str, Any] | None:
    clauses = []
    if event.idempotency_key:
        clauses.append(rf.c.id == event.idempotency_key)
    if event.processor_reference:
        clauses.append(rf.c.processor_reference == event.processor_reference)
    for clause in clauses:
        row = (await conn.execute(select(rf).where(clause))).mappings().first()
        if row is not None:
            return dict(row)
    return None


async def apply_event(gw: Gateway, connector: str, event: ConnectorEvent) -> str:
    if event.kind == "payment" and event.payment_status is not None:
        return await _apply_payment(gw, connector, event, event.payment_status)
    if event.kind == "refund" and event.refund_status is not None:
        return await _apply_refund(gw, event)
    return f"ignored: {event.kind} events are recorded but not applied"


async def _apply_payment(gw: Gateway, connector: str, event: ConnectorEvent, said: PaymentStatus) -> str:
    async with gw.db.read() as conn:
        attempt = await _find_attempt(conn, connector, event)
        if attempt is None:
            return "ignored: no matching payment"
        intent = await pay_repo.get_intent(conn, _ctx(attempt), attempt["intent_id"])
    verdict = classify(attempt["status"], intent["pending_op"], said)
    if verdict == "stale":
        return f"stale: paygate already has {attempt['status']}"
    result: PaymentResult = PaymentResult(
        status=said,
        processor_reference=event.processor_reference,
        amount_captured=event.amount if said is PaymentStatus.CAPTURED else None,
        amount_authorized=event.amount,
    )
    note = ""
    if verdict == "conflict":
        route = await gw.router.for_attempt(attempt)
        req = SyncRequest(
            idempotency_key=attempt["id"],
            credentials=route.credentials,
            processor_reference=attempt["processor_reference"] or event.processor_reference,
            amount=attempt["amount"],
            currency=attempt["currency"],
        )
        try:
            result = await route.connector.sync(req, route.http)  # type: ignore[arg-type]
        except ConnectorError as exc:
            raise RuntimeError(f"sync failed: {type(exc).__name__}") from exc  # retried by the job
        note = f"conflict: event said {said.value}, sync said {result.status.value}; "
    ctx = _ctx(attempt)
    async with gw.db.write() as conn:
        intent = await pay_repo.get_intent(conn, ctx, attempt["intent_id"], lock=True)
        attempt = await pay_repo.get_attempt(conn, attempt["id"], lock=True) or attempt
        before = (intent["status"], attempt["status"])
        status = result.status
        if attempt["status"] in ("pending", "unknown"):
            await flows.apply_authorization(conn, ctx, intent, attempt, result)
        elif attempt["status"] == "authorized" and intent["pending_op"] == "capture" and status.value == "captured":
            amount = result.amount_captured or attempt["amount"]
            await flows.apply_capture(conn, ctx, intent, attempt, amount, result)
        elif attempt["status"] == "authorized" and intent["pending_op"] == "void" and status.value == "voided":
            await flows.apply_void(conn, ctx, intent, attempt, None, result)
        intent = await pay_repo.get_intent(conn, ctx, attempt["intent_id"])
        attempt = await pay_repo.get_attempt(conn, attempt["id"]) or attempt
    after = (intent["status"], attempt["status"])
    if after == before:
        return note + f"unchanged: {after[0]}/{after[1]}"
    return note + f"applied: {before[0]}/{before[1]} -> {after[0]}/{after[1]}"


async def _apply_refund(gw: Gateway, event: ConnectorEvent) -> str:
    assert event.refund_status is not None
    async with gw.db.read() as conn:
        found = await _find_refund(conn, event)
    if found is None:
        return "ignored: no matching refund"
    if found["status"] != "pending":
        if found["status"] == event.refund_status.value:
            return f"stale: paygate already has {found['status']}"
        # The event contradicts a final refund: ask the processor (re-sending under the refund's own
        # idempotency key returns its recorded outcome, never a second refund) and change nothing here.
        said = await _ask_processor_about_refund(gw, found)
        log.error(
            "hooks.refund_conflict",
            refund=found["id"],
            paygate=found["status"],
            said_by_event=event.refund_status.value,
            processor=said,
        )
        return f"conflict: paygate has {found['status']}, event says {event.refund_status.value}, processor says {said}"
    ctx = _ctx(found)
    async with gw.db.write() as conn:
        refund = await refund_repo.get_refund(conn, ctx, found["id"], lock=True)
        result = RefundResult(status=event.refund_status, processor_reference=event.processor_reference)
        refund = await apply_refund_result(conn, ctx, refund, result)
    return f"applied: refund {refund['status']}"


async def _ask_processor_about_refund(gw: Gateway, refund: dict[str, Any]) -> str:
    """The processor's own answer for ``refund`` (its status value), or ``unreachable``."""
    result = await send_to_processor(gw.db, gw.router, refund)
    return result.status.value if isinstance(result, RefundResult) else "unreachable"
