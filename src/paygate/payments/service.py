"""PaymentIntent operations behind the API.

Every write operation returns a :class:`Reply` and records it through the idempotency :class:`Guard` inside the
transaction that makes the state change, so the stored response and the state can never disagree.

Operations that call a processor are split in two transactions with the network call between them (rule 3):
txn 1 records the attempt, sets ``pending_op`` and writes an idempotency checkpoint; the processor is called with
the attempt id as its idempotency key (rule 4); txn 2 applies the answer (:mod:`paygate.payments.flows`). A
crash between the two leaves a checkpoint from which a retry with the same idempotency key resumes, and an
attempt the status-sync job resolves; neither can move money twice.

Txn 1 of create-with-confirm, confirm, capture and cancel claims the idempotency key itself; on PostgreSQL it
then learns the row version its writes carry (``Guard.version``) and txn 2 is first tried optimistically on
the rows as txn 1 wrote them (:meth:`PaymentService._record`). Txn 1 of confirm, capture and cancel is itself
optimistic on PostgreSQL (:func:`paygate.db.optimistic.optimistic_first`): it reads the payment unlocked and
guards its writes by the row versions it read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors import testcards
from paygate.connectors.base import (
    AuthorizeRequest,
    CaptureRequest,
    CardData,
    PaymentResult,
    PaymentStatus,
    VoidRequest,
)
from paygate.connectors.errors import ConnectorError
from paygate.customers.service import CustomerService, referenced_customer
from paygate.db.engine import Database
from paygate.db.optimistic import optimistic_first, optimistic_then_locked
from paygate.db.pagination import list_page
from paygate.db.tables import payment_intents
from paygate.events import service as events
from paygate.idempotency.service import Guard, Reply, error_reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, LockTimeout, ProcessorTemporarilyUnavailable, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.money import validate_charge_amount
from paygate.kit.params import merge_metadata
from paygate.merchants.context import AuthContext
from paygate.payments import flows
from paygate.payments import repository as repo
from paygate.payments.model import Action, Status, check_action
from paygate.payments.schemas import (
    CancelParams,
    CaptureParams,
    ConfirmParams,
    CreateParams,
    IntentListParams,
    UpdateParams,
    charge_object,
    intent_object,
)
from paygate.routing.rules import PaymentFacts
from paygate.routing.service import Route, Router, is_failover_safe
from paygate.vault import usage
from paygate.vault.cards import card_country
from paygate.vault.errors import VaultError
from paygate.vault.schemas import PaymentMethodData
from paygate.vault.service import PreparedCard, VaultService

__all__ = ["PaymentService"]

_EXPANDABLE = frozenset({"latest_charge"})
# An attempt still pending this long after it was recorded belongs to a request that died mid-call: the status
# sync asks the processor about it (ARCHITECTURE.md rule 5).
STUCK_ATTEMPT_SECONDS = 60


Row = dict[str, Any]
Answer = PaymentResult | ConnectorError  # a processor's answer, or why there is none


def _check_expand(expand: list[str]) -> None:
    for field in expand:
        if field not in _EXPANDABLE:
            raise InvalidRequest(f"This property cannot be expanded ({field}).", param="expand")


def _ok(obj: dict[str, Any]) -> Reply:
    return Reply(200, orjson.dumps(obj))


def _test_card_facts(payment_method: str | None) -> tuple[str | None, str | None]:
    behaviour = testcards.resolve(token=payment_method) if payment_method else None
    if behaviour is None:
        return None, None
    return behaviour.brand, card_country(behaviour.number)


class PaymentService:
    def __init__(
        self,
        db: Database,
        router: Router,
        *,
        vault: VaultService | None = None,
        customers: CustomerService | None = None,
    ) -> None:
        self.db = db
        self.router = router
        self.vault = vault  # vaulted pm_… ids and payment_method_data need it; sandbox tokens do not
        self.customers = customers  # setup_future_usage saves the card to the customer through it

    # ------------------------------------------------------------------ reads
    async def _object(self, conn: AsyncConnection, intent: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        charge = None
        if "latest_charge" in expand and intent["latest_charge"]:
            attempt = await repo.get_attempt(conn, intent["latest_charge"])
            charge = charge_object(attempt, intent) if attempt else None
        return intent_object(intent, charge=charge)

    async def retrieve(self, ctx: AuthContext, intent_id: str, expand: list[str]) -> dict[str, Any]:
        _check_expand(expand)
        async with self.db.read() as conn:
            return await self._object(conn, await repo.get_intent(conn, ctx, intent_id), expand)

    async def list_intents(self, ctx: AuthContext, params: IntentListParams) -> dict[str, Any]:
        t = payment_intents
        scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode]
        if params.customer:
            scope.append(t.c.customer == params.customer)
        async with self.db.read() as conn:
            return await list_page(
                conn,
                t,
                scope=scope,
                params=params,
                url="/v1/payment_intents",
                kind="payment_intent",
                serialize=intent_object,
            )

    # ------------------------------------------------------------------ helpers
    def _vaulted(self, pm: str) -> bool:
        """Whether ``pm`` names a card in the vault (sandbox test tokens such as ``pm_card_visa`` do not)."""
        return self.vault is not None and pm.startswith("pm_") and testcards.resolve(token=pm) is None

    async def _check_payment_method(
        self, conn: AsyncConnection, ctx: AuthContext, pm: str, *, customer: str | None, intent_id: str
    ) -> None:
        """A sandbox test token (``pm_card_visa``…) or a vaulted ``pm_…`` of this merchant and mode that the
        intent ``intent_id`` of ``customer`` may use (:func:`paygate.vault.usage.check_use`); else 404 / 400."""
        if testcards.resolve(token=pm) is not None:
            return
        if self.vault is None or not self._vaulted(pm):
            raise ResourceMissing("PaymentMethod", pm, param="payment_method")
        row = await self.vault.get_row(conn, ctx, pm, param="payment_method")
        usage.check_use(row, customer=customer, intent_id=intent_id)

    async def _tokenize_inline(
        self, ctx: AuthContext, payment_method: str | None, data: PaymentMethodData | None
    ) -> PreparedCard | None:
        """Validate and seal ``payment_method_data`` (stored later in the caller's transaction; the CVC is held
        in memory by the vault for this confirmation only)."""
        if data is None:
            return None
        if payment_method:
            raise InvalidRequest(
                "You may only specify one of these parameters: payment_method, payment_method_data.",
                param="payment_method_data",
            )
        if self.vault is None:
            raise InvalidRequest("payment_method_data is not supported by this server.", param="payment_method_data")
        await self.vault.check_raw_access(ctx, param="payment_method_data[card][number]")
        return self.vault.prepare(ctx, data, param_prefix="payment_method_data")

    async def _card_for(self, attempt: dict[str, Any]) -> CardData | None:
        """Detokenize a vaulted payment method for this attempt (audited by the vault); ``None`` for sandbox
        tokens, which go to the connector as ``payment_method_token``."""
        pm = attempt["payment_method"]
        if self.vault is None or not pm or testcards.resolve(token=pm) is not None:
            return None
        return await self.vault.detokenize(
            merchant_id=attempt["merchant_id"],
            livemode=bool(attempt["livemode"]),
            token=pm,
            purpose="authorize",
            actor=f"payments:{attempt['merchant_id']}",
            attempt_id=attempt["id"],
        )

    async def _save_for_future(self, conn: AsyncConnection, ctx: AuthContext, intent: dict[str, Any]) -> None:
        """``customer`` + ``setup_future_usage`` on a successful authorization attaches the card."""
        if (
            self.customers is not None
            and intent["customer"]
            and intent["setup_future_usage"]
            and intent["payment_method"]
            and intent["status"] in (Status.SUCCEEDED, Status.REQUIRES_CAPTURE)
        ):
            await self.customers.save_after_payment(
                conn, ctx, intent["customer"], intent["payment_method"], intent["id"]
            )

    async def _finish(self, conn: AsyncConnection, guard: Guard, applied: flows.Applied, expand: list[str]) -> Reply:
        reply = error_reply(applied.error) if applied.error else _ok(await self._object(conn, applied.intent, expand))
        await guard.finish(conn, reply.status, reply.body)
        return reply

    async def _finish_or_forget(
        self, conn: AsyncConnection, guard: Guard, applied: flows.Applied, expand: list[str]
    ) -> Reply:
        """:meth:`_finish`, except when the processor provably did nothing: ``applied`` then released the
        intent's ``pending_op``, and the key is forgotten with it, so a retry with it executes afresh; the 503
        asking for that retry is not stored."""
        if isinstance(applied.error, ProcessorTemporarilyUnavailable):
            await guard.forget(conn)
            return error_reply(applied.error)
        return await self._finish(conn, guard, applied, expand)

    async def _card_facts(self, ctx: AuthContext, payment_method: str | None) -> tuple[str | None, str | None]:
        """(card brand, card country) for routing rules, when paygate knows them."""
        if payment_method and self.vault is not None and payment_method not in testcards.TOKENS:
            facts = await self.vault.card_facts(ctx, payment_method)
            return facts if facts is not None else (None, None)
        return _test_card_facts(payment_method)

    async def _payment_method_facts(
        self, ctx: AuthContext, pm: str, *, customer: str | None = None, intent_id: str | None = None
    ) -> tuple[str | None, str | None] | None:
        """The card facts of ``pm`` for routing, or ``None`` when it is neither a test token nor a vaulted ``pm_…``
        of this merchant and mode (the caller answers 404, as :meth:`_check_payment_method`). With ``intent_id``,
        also check that intent of ``customer`` may use it (400 otherwise; the confirming transaction still
        claims it, :func:`paygate.vault.usage.claim`). One read at most, made outside any write transaction: a
        read inside one holds the SQLite writer while it waits."""
        if testcards.resolve(token=pm) is not None:
            return _test_card_facts(pm)
        if self.vault is None or not self._vaulted(pm):
            return None
        row = await self.vault.lookup(ctx, pm)
        if row is None:
            return None
        if intent_id is not None:
            usage.check_use(row, customer=customer, intent_id=intent_id)
        return (row["brand"], row["country"])

    async def _routes(
        self, ctx: AuthContext, intent: dict[str, Any], facts: tuple[str | None, str | None] | None = None
    ) -> list[Route]:
        brand, country = facts if facts is not None else await self._card_facts(ctx, intent["payment_method"])
        return await self.router.candidates(
            ctx, PaymentFacts(intent["amount"], intent["currency"], card_brand=brand, country=country)
        )

    @staticmethod
    def _attempt_row(ctx: AuthContext, intent: dict[str, Any], route: Route, now: int) -> dict[str, Any]:
        return {
            "id": new_id("ch"),
            "intent_id": intent["id"],
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "processor": route.processor,
            "processor_account": route.account_id,
            "amount": intent["amount"],
            "currency": intent["currency"],
            "capture": intent["capture_method"] != "manual",
            "status": "pending",
            "amount_captured": 0,
            "payment_method": intent["payment_method"],
            "decline_code": None,
            "failure_code": None,
            "failure_message": None,
            "processor_reference": None,
            "next_sync_at": now + STUCK_ATTEMPT_SECONDS,  # if this process dies mid-call, sync picks it up
            "sync_attempts": 0,
            "created": now,
            "updated": now,
        }

    @staticmethod
    def _processing(attempt: dict[str, Any], route: Route, now: int) -> dict[str, Any]:
        """The intent's columns while ``attempt`` is at the processor."""
        return {
            "status": Status.PROCESSING,
            "pending_op": "confirm",
            "latest_charge": attempt["id"],
            "last_payment_error": None,
            "next_action": None,
            "processor": route.processor,
            "updated": now,
        }

    async def _new_attempt(
        self,
        conn: AsyncConnection,
        ctx: AuthContext,
        intent: dict[str, Any],
        route: Route,
        guard: Guard,
        *,
        changes: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record an attempt at ``route`` and checkpoint it (part of the caller's transaction). The intent is
        written once: ``changes`` (columns the caller changed in ``intent`` already) with the attempt's, guarded
        by ``version`` when given."""
        now = clock.now()
        attempt = self._attempt_row(ctx, intent, route, now)
        await repo.insert_attempt(conn, attempt)
        processing = {**(changes or {}), **self._processing(attempt, route, now)}
        intent = await repo.update_intent(conn, intent, processing, version=version)
        await guard.checkpoint(conn, {"op": "authorize", "intent": intent["id"], "attempt": attempt["id"]})
        return intent, attempt

    async def _begin_authorization(
        self,
        conn: AsyncConnection,
        ctx: AuthContext,
        intent: dict[str, Any],
        guard: Guard,
        facts: tuple[str | None, str | None] | None,
        changes: dict[str, Any],
        version: str | None,
    ) -> tuple[dict[str, Any], dict[str, Any], list[Route]]:
        """txn 1 of a confirmation: choose the processors, record the first attempt and the checkpoint
        (:meth:`_new_attempt`)."""
        routes = await self._routes(ctx, intent, facts)
        intent, attempt = await self._new_attempt(conn, ctx, intent, routes[0], guard, changes=changes, version=version)
        return intent, attempt, routes

    async def _drive_authorization(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        routes: list[Route],
        guard: Guard,
        expand: list[str],
        *,
        error_on_requires_action: bool = False,
    ) -> Reply:
        """Authorize at each route in turn while the failure proves no money moved (processor unreachable,
        5xx before acceptance, circuit open, a decline another processor may accept). An unknown outcome stops
        failover: the payment stays processing until the status sync learns what happened.

        ``intent`` and ``attempt`` are the rows as the transaction that opened the attempt (txn 1) wrote them;
        when that transaction also claimed the idempotency key, ``guard.version`` is their PostgreSQL row
        version and txn 2 is tried optimistically (:meth:`_complete_authorization`)."""
        version = guard.version
        held = _HeldCvc()  # this confirmation's CVC: follows a failover, dropped when this call returns
        for index, route in enumerate(routes):
            result = await self._authorize(route, intent, attempt, held)
            if index + 1 < len(routes) and is_failover_safe(result):
                moved = await self._fail_over(ctx, intent["id"], attempt["id"], result, routes[index + 1], guard)
                if moved is not None:
                    intent, attempt = moved
                    version = None  # rows written by the failover's transaction: no version known
                    continue
            return await self._complete_authorization(
                ctx, intent, attempt, version, result, guard, expand,
                error_on_requires_action=error_on_requires_action,
            )  # fmt: skip
        raise AssertionError("unreachable: the last route always completes")

    async def _fail_over(
        self,
        ctx: AuthContext,
        intent_id: str,
        attempt_id: str,
        result: PaymentResult | ConnectorError,
        next_route: Route,
        guard: Guard,
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Close a failed attempt (no money moved) and open the next one, in one transaction."""
        async with self.db.write(urgent=True) as conn:
            intent, attempt = await repo.get_intent_and_attempt(conn, ctx, intent_id, attempt_id, lock=True)
            if attempt is None or attempt["status"] != "pending" or intent["latest_charge"] != attempt_id:
                return None
            if isinstance(result, PaymentResult):
                code, decline, message = result.error_code or "card_declined", result.decline_code, result.message
            else:
                code, decline, message = "processing_error", None, f"processor unavailable: {type(result).__name__}"
            await repo.update_attempt(
                conn,
                attempt,
                {
                    "status": "failed",
                    "failure_code": code,
                    "decline_code": decline,
                    "failure_message": message,
                    "next_sync_at": None,
                    "updated": clock.now(),
                },
            )
            return await self._new_attempt(conn, ctx, intent, next_route, guard)

    async def _authorize(
        self, route: Route, intent: dict[str, Any], attempt: dict[str, Any], held: _HeldCvc | None = None
    ) -> PaymentResult | ConnectorError:
        """Ask ``route``'s processor to authorize ``attempt``. ``held`` carries the CVC between the attempts of
        one confirmation: the vault hands it out once (``CvcHold.take``), and a failover's next attempt must
        send it too, or the next processor sees a card without its CVC."""
        try:
            card = await self._card_for(attempt)
        except VaultError:  # fail closed: nothing reaches the processor, no money moves
            return PaymentResult(
                status=PaymentStatus.FAILED,
                error_code="processing_error",
                message="The payment method could not be read from the card vault.",
            )
        if card is not None and held is not None:
            if card.cvc is not None:
                held.cvc = card.cvc
            elif held.cvc is not None:
                card = dataclasses.replace(card, cvc=held.cvc)
        req = AuthorizeRequest(
            idempotency_key=attempt["id"],
            attempt_id=attempt["id"],
            amount=attempt["amount"],
            currency=attempt["currency"],
            capture=bool(attempt["capture"]),
            credentials=route.credentials,
            card=card,
            payment_method_token=None if card else attempt["payment_method"],
            return_url=intent["return_url"],
            description=intent["description"],
            metadata=jsonx.loads(intent["metadata"]),
        )
        return await self.router.invoke(route, lambda: route.connector.authorize(req, route.http))  # type: ignore[arg-type]

    async def _complete_authorization(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        version: str | None,
        result: PaymentResult | ConnectorError,
        guard: Guard,
        expand: list[str],
        *,
        error_on_requires_action: bool = False,
    ) -> Reply:
        """txn 2: record the processor's answer (optimistically first with the rows' ``version``: :meth:`_record`)."""

        async def record(
            conn: AsyncConnection, intent: dict[str, Any], attempt: dict[str, Any], version: str | None
        ) -> Reply:
            applied = await flows.apply_authorization(
                conn, ctx, intent, attempt, result, error_on_requires_action=error_on_requires_action, version=version
            )
            await self._save_for_future(conn, ctx, applied.intent)
            return await self._finish(conn, guard, applied, expand)

        return await self._record(ctx, intent, attempt, version, record)

    async def _record(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        version: str | None,
        record: Callable[[AsyncConnection, dict[str, Any], dict[str, Any], str | None], Awaitable[Reply]],
    ) -> Reply:
        """Run ``record`` — a txn 2 applying a processor's answer — optimistically, then locked if need be.

        With the rows' ``version`` (PostgreSQL: txn 1 wrote both ``intent`` and ``attempt`` and claimed the key)
        it first runs on the rows as txn 1 left them, its writes guarded by that version
        (:mod:`paygate.db.pgbatch`): one statement instead of BEGIN, a locked read, the writes and COMMIT. If
        either row changed meanwhile (a status sync, a processor's webhook, a merchant's update), nothing of it
        is written (``RowChanged``) and it runs again on the current rows, read locked, as it always could."""

        async def locked(conn: AsyncConnection) -> Reply:
            now_intent, found = await repo.get_intent_and_attempt(conn, ctx, intent["id"], attempt["id"], lock=True)
            assert found is not None
            return await record(conn, now_intent, found, None)

        async def optimistic(conn: AsyncConnection) -> Reply:
            return await record(conn, intent, attempt, version)

        return await optimistic_then_locked(self.db, optimistic if version is not None else None, locked)

    # ------------------------------------------------------------------ create / update
    async def create(self, ctx: AuthContext, p: CreateParams, guard: Guard) -> Reply:
        _check_expand(p.expand)
        if guard.recovery:
            return await self.resume(ctx, guard, p.expand)
        validate_charge_amount(p.amount, p.currency)
        if p.customer is not None:
            await referenced_customer(self.customers, ctx, p.customer)
        intent_id = new_id("pi")
        facts = None
        if p.payment_method:
            facts = await self._payment_method_facts(ctx, p.payment_method, customer=p.customer, intent_id=intent_id)
            if facts is None:
                raise ResourceMissing("PaymentMethod", p.payment_method, param="payment_method")
        prepared = await self._tokenize_inline(ctx, p.payment_method, p.payment_method_data)
        if prepared is not None:
            facts = (prepared.row.get("brand"), prepared.row.get("country"))
        payment_method = prepared.id if prepared else p.payment_method
        if p.confirm and not payment_method:
            raise InvalidRequest(
                "You must provide a payment_method when confirm=true.", param="payment_method", code="parameter_missing"
            )
        now = clock.now()
        intent = repo.new_intent_row(
            ctx,
            intent_id,
            amount=p.amount,
            currency=p.currency,
            status=Status.REQUIRES_CONFIRMATION if payment_method else Status.REQUIRES_PAYMENT_METHOD,
            now=now,
            capture_method=p.capture_method,
            confirmation_method=p.confirmation_method,
            payment_method=payment_method,
            payment_method_types=p.payment_method_types,
            description=p.description,
            metadata=p.metadata,
            customer=p.customer,
            receipt_email=p.receipt_email,
            statement_descriptor=p.statement_descriptor,
            statement_descriptor_suffix=p.statement_descriptor_suffix,
            setup_future_usage=p.setup_future_usage,
            return_url=p.return_url,
        )
        if not p.confirm:
            async with self.db.write() as conn:
                if prepared is not None and self.vault is not None:
                    await self.vault.store(conn, prepared)
                await repo.insert_intent(conn, intent)
                await events.emit(conn, ctx, "payment_intent.created", intent_object(intent))
                reply = _ok(await self._object(conn, intent, p.expand))
                await guard.finish(conn, reply.status, reply.body)
                return reply
        # Create and confirm in one call: the processors are chosen before the transaction, and the intent is
        # written once, already processing, with its first attempt and the checkpoint (txn 1).
        routes = await self._routes(ctx, intent, facts)
        attempt = self._attempt_row(ctx, intent, routes[0], now)
        created = intent_object(intent)  # payment_intent.created describes the intent before confirmation
        intent = {**intent, **self._processing(attempt, routes[0], now)}
        async with self.db.write() as conn:
            if prepared is not None and self.vault is not None:
                await self.vault.store(conn, prepared, consumed_by=intent_id)
            elif payment_method is not None and self._vaulted(payment_method):
                await usage.claim(conn, ctx, payment_method, customer=p.customer, intent_id=intent_id)
            await repo.insert_intent(conn, intent)
            await events.emit(conn, ctx, "payment_intent.created", created)
            await repo.insert_attempt(conn, attempt)
            await guard.checkpoint(conn, {"op": "authorize", "intent": intent["id"], "attempt": attempt["id"]})
        return await self._drive_authorization(
            ctx, intent, attempt, routes, guard, p.expand, error_on_requires_action=bool(p.error_on_requires_action)
        )

    async def update(self, ctx: AuthContext, intent_id: str, p: UpdateParams, guard: Guard) -> Reply:
        _check_expand(p.expand)
        if p.customer is not None:
            await referenced_customer(self.customers, ctx, p.customer)
        async with self.db.write() as conn:
            intent = await repo.get_intent(conn, ctx, intent_id, lock=True)
            if intent["pending_op"]:
                raise LockTimeout(intent_id)
            check_action(intent["status"], Action.UPDATE, intent_id=intent_id)
            if p.customer is not None and intent["customer"] not in (None, p.customer):
                raise InvalidRequest(
                    "You cannot change the customer of a PaymentIntent once it has one. To charge another "
                    "customer, cancel this PaymentIntent and create a new one.",
                    param="customer",
                )
            values: dict[str, Any] = {"updated": clock.now(), "last_payment_error": None}
            amount, currency = p.amount or intent["amount"], p.currency or intent["currency"]
            if p.amount is not None or p.currency is not None:
                validate_charge_amount(amount, currency)
                values.update(amount=amount, currency=currency)
            for field in (
                "capture_method",
                "customer",
                "description",
                "receipt_email",
                "statement_descriptor",
                "statement_descriptor_suffix",
            ):
                if getattr(p, field) is not None:
                    values[field] = getattr(p, field)
            if p.setup_future_usage is not None:
                values["setup_future_usage"] = p.setup_future_usage or None
            if p.payment_method_types is not None:
                values["payment_method_types"] = jsonx.dumps(p.payment_method_types)
            if p.metadata is not None:
                values["metadata"] = merge_metadata(intent["metadata"], p.metadata)
            pm = p.payment_method if p.payment_method is not None else intent["payment_method"]
            if p.payment_method is not None or (p.customer is not None and pm):
                # a new payment method, or a new customer for the one the intent has: may they go together?
                customer = p.customer if p.customer is not None else intent["customer"]
                await self._check_payment_method(conn, ctx, pm, customer=customer, intent_id=intent_id)
            if p.payment_method is not None:
                values["payment_method"] = p.payment_method
                if intent["status"] == Status.REQUIRES_PAYMENT_METHOD:
                    values["status"] = Status.REQUIRES_CONFIRMATION
            intent = await repo.update_intent(conn, intent, values)
            reply = _ok(await self._object(conn, intent, p.expand))
            await guard.finish(conn, reply.status, reply.body)
            return reply

    # ------------------------------------------------------------------ confirm
    async def confirm(self, ctx: AuthContext, intent_id: str, p: ConfirmParams, guard: Guard) -> Reply:
        _check_expand(p.expand)
        if guard.recovery:
            return await self.resume(ctx, guard, p.expand)
        prepared = await self._tokenize_inline(ctx, p.payment_method, p.payment_method_data)
        # Card facts (and the payment method check) before the write transaction; an intent's own vaulted
        # payment method is only known inside it.
        facts = await self._payment_method_facts(ctx, p.payment_method) if p.payment_method else None
        if prepared is not None:
            facts = (prepared.row.get("brand"), prepared.row.get("country"))

        async def txn1(conn: AsyncConnection, optimistic: bool) -> tuple[Row, Row, list[Route]]:
            intent, v = await repo.intent_for_update(conn, ctx, intent_id, optimistic=optimistic)
            if intent["pending_op"]:
                raise LockTimeout(intent_id)
            check_action(intent["status"], Action.CONFIRM, intent_id=intent_id)
            values: dict[str, Any] = {}
            if p.payment_method:
                if facts is None:
                    raise ResourceMissing("PaymentMethod", p.payment_method, param="payment_method")
                values["payment_method"] = p.payment_method
            if prepared is not None and self.vault is not None:
                await self.vault.store(conn, prepared, consumed_by=intent_id)
                values["payment_method"] = prepared.id
            for field in ("return_url", "capture_method", "receipt_email"):
                if getattr(p, field) is not None:
                    values[field] = getattr(p, field)
            if p.setup_future_usage is not None:
                values["setup_future_usage"] = p.setup_future_usage or None
            intent = {**intent, **values}
            if not intent["payment_method"]:
                raise InvalidRequest(
                    "You cannot confirm this PaymentIntent because it's missing a payment method. You can either "
                    "update the PaymentIntent with a payment method and then confirm it again, or confirm it again "
                    "directly with a payment method.",
                    code="payment_intent_unexpected_state",
                    param="payment_method",
                )
            if prepared is None and self._vaulted(intent["payment_method"]):
                # one conditional write: a card attached to no customer is this intent's alone from here on
                await usage.claim(conn, ctx, intent["payment_method"], customer=intent["customer"], intent_id=intent_id)
            return await self._begin_authorization(conn, ctx, intent, guard, facts, values, v)

        intent, attempt, routes = await optimistic_first(self.db, txn1, rolled_back=guard.rolled_back)
        return await self._drive_authorization(
            ctx, intent, attempt, routes, guard, p.expand, error_on_requires_action=bool(p.error_on_requires_action)
        )

    # ------------------------------------------------------------------ capture / cancel
    async def capture(self, ctx: AuthContext, intent_id: str, p: CaptureParams, guard: Guard) -> Reply:
        _check_expand(p.expand)
        if guard.recovery:
            return await self.resume(ctx, guard, p.expand)

        async def txn1(conn: AsyncConnection, optimistic: bool) -> tuple[Row, Row, int]:
            intent, attempt, v = await repo.intent_for_change(conn, ctx, intent_id, optimistic=optimistic)
            if intent["pending_op"]:
                raise LockTimeout(intent_id)
            check_action(intent["status"], Action.CAPTURE, intent_id=intent_id)
            amount = p.amount_to_capture or intent["amount_capturable"]
            if amount > intent["amount_capturable"]:
                raise InvalidRequest(
                    f"The amount_to_capture ({amount}) is greater than the amount capturable "
                    f"({intent['amount_capturable']}).",
                    param="amount_to_capture",
                    code="amount_too_large",
                )
            values: dict[str, Any] = {"pending_op": "capture", "updated": clock.now()}
            if p.metadata is not None:
                values["metadata"] = merge_metadata(intent["metadata"], p.metadata)
            for field in ("statement_descriptor", "statement_descriptor_suffix"):
                if getattr(p, field) is not None:
                    values[field] = getattr(p, field)
            intent = await repo.update_intent(conn, intent, values, version=v.intent)
            assert attempt is not None
            attempt = await _touched(conn, guard, attempt, v.attempt)
            await guard.checkpoint(
                conn, {"op": "capture", "intent": intent_id, "attempt": attempt["id"], "amount": amount}
            )
            return intent, attempt, amount

        intent, attempt, amount = await optimistic_first(self.db, txn1, rolled_back=guard.rolled_back)
        return await self._run_capture(ctx, intent, attempt, guard.version, amount, guard, p.expand)

    async def _run_capture(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        version: str | None,
        amount: int,
        guard: Guard,
        expand: list[str],
    ) -> Reply:
        """Ask the processor to capture, then record its answer (:meth:`_settle`)."""

        def call(route: Route) -> Awaitable[PaymentResult]:
            req = CaptureRequest(
                idempotency_key=f"{attempt['id']}-capture",
                processor_reference=attempt["processor_reference"],
                amount=amount,
                currency=attempt["currency"],
                credentials=route.credentials,
            )
            return route.connector.capture(req, route.http)  # type: ignore[arg-type]

        def apply(conn: AsyncConnection, i: Row, a: Row, result: Answer, v: str | None) -> Awaitable[flows.Applied]:
            return flows.apply_capture(conn, ctx, i, a, amount, result, version=v)

        return await self._settle(ctx, intent, attempt, version, guard, expand, call, apply)

    async def _settle(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        version: str | None,
        guard: Guard,
        expand: list[str],
        call: Callable[[Route], Awaitable[PaymentResult]],
        apply: Callable[[AsyncConnection, Row, Row, Answer, str | None], Awaitable[flows.Applied]],
    ) -> Reply:
        """The processor call of a capture or void on the attempt's processor (``call``), then txn 2 applying
        its answer (``apply``, through :meth:`_record`). ``intent`` and ``attempt``: the rows as txn 1 wrote
        them, of row ``version`` (or ``None``: read locked in txn 2)."""
        route = await self.router.for_attempt(attempt)
        result: PaymentResult | ConnectorError
        try:
            result = await self.router.invoke(route, lambda: call(route))
        except ConnectorError as exc:
            result = exc

        async def record(
            conn: AsyncConnection, intent: dict[str, Any], attempt: dict[str, Any], version: str | None
        ) -> Reply:
            applied = await apply(conn, intent, attempt, result, version)
            return await self._finish_or_forget(conn, guard, applied, expand)

        return await self._record(ctx, intent, attempt, version, record)

    async def cancel(self, ctx: AuthContext, intent_id: str, p: CancelParams, guard: Guard) -> Reply:
        _check_expand(p.expand)
        if guard.recovery:
            return await self.resume(ctx, guard, p.expand)

        async def txn1(conn: AsyncConnection, optimistic: bool) -> Reply | tuple[Row, Row]:
            intent, attempt, v = await repo.intent_for_change(conn, ctx, intent_id, optimistic=optimistic)
            if intent["pending_op"]:
                raise LockTimeout(intent_id)
            check_action(intent["status"], Action.CANCEL, intent_id=intent_id)
            now = clock.now()
            if intent["status"] != Status.REQUIRES_CAPTURE:
                intent = await repo.update_intent(
                    conn,
                    intent,
                    {
                        "status": Status.CANCELED,
                        "canceled_at": now,
                        "next_action": None,
                        "amount_capturable": 0,
                        "cancellation_reason": p.cancellation_reason,
                        "updated": now,
                    },
                    version=v.intent,
                )
                await events.emit(conn, ctx, "payment_intent.canceled", intent_object(intent))
                reply = _ok(await self._object(conn, intent, p.expand))
                await guard.finish(conn, reply.status, reply.body)
                return reply
            intent = await repo.update_intent(conn, intent, {"pending_op": "void", "updated": now}, version=v.intent)
            assert attempt is not None
            attempt = await _touched(conn, guard, attempt, v.attempt)
            await guard.checkpoint(
                conn, {"op": "void", "intent": intent_id, "attempt": attempt["id"], "reason": p.cancellation_reason}
            )
            return intent, attempt

        done = await optimistic_first(self.db, txn1, rolled_back=guard.rolled_back)
        if isinstance(done, Reply):
            return done
        intent, attempt = done
        return await self._run_void(ctx, intent, attempt, guard.version, p.cancellation_reason, guard, p.expand)

    async def _run_void(
        self,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        version: str | None,
        reason: str | None,
        guard: Guard,
        expand: list[str],
    ) -> Reply:
        """Ask the processor to void the authorization, then record its answer (:meth:`_settle`)."""

        def call(route: Route) -> Awaitable[PaymentResult]:
            req = VoidRequest(
                idempotency_key=f"{attempt['id']}-void",
                processor_reference=attempt["processor_reference"],
                credentials=route.credentials,
                amount=attempt["amount"],
                currency=attempt["currency"],
            )
            return route.connector.void(req, route.http)  # type: ignore[arg-type]

        def apply(conn: AsyncConnection, i: Row, a: Row, result: Answer, v: str | None) -> Awaitable[flows.Applied]:
            return flows.apply_void(conn, ctx, i, a, reason, result, version=v)

        return await self._settle(ctx, intent, attempt, version, guard, expand, call, apply)

    # ------------------------------------------------------------------ crash recovery
    async def resume(self, ctx: AuthContext, guard: Guard, expand: list[str]) -> Reply:
        """Finish an operation whose earlier execution died after its checkpoint (see the module docstring).

        The processor is asked again with the *same* idempotency key, so it answers with what it already did
        instead of doing it twice; if the outcome was meanwhile applied (e.g. by the status-sync job), the
        current state is the answer.
        """
        rec = guard.recovery or {}
        async with self.db.read() as conn:
            intent = await repo.get_intent(conn, ctx, rec["intent"])
            attempt = await repo.get_attempt(conn, rec["attempt"])
        assert attempt is not None
        op = rec["op"]
        if (
            op == "authorize"
            and attempt["status"] in ("pending", "unknown")
            and intent["latest_charge"] == attempt["id"]
        ):
            route = await self.router.for_attempt(attempt)
            result = await self._authorize(route, intent, attempt)
            return await self._complete_authorization(ctx, intent, attempt, None, result, guard, expand)
        if op == "capture" and intent["pending_op"] == "capture":
            return await self._run_capture(ctx, intent, attempt, None, int(rec["amount"]), guard, expand)
        if op == "void" and intent["pending_op"] == "void":
            return await self._run_void(ctx, intent, attempt, None, rec.get("reason"), guard, expand)
        async with self.db.write() as conn:
            return await self._finish(conn, guard, flows.current_state(intent, attempt), expand)


@dataclasses.dataclass(slots=True)
class _HeldCvc:
    """The CVC of one confirmation once the vault handed it out (never stored, logged or put in an event)."""

    cvc: str | None = dataclasses.field(default=None, repr=False)


async def _touched(conn: AsyncConnection, guard: Guard, attempt: dict[str, Any], version: str | None) -> dict[str, Any]:
    """In a txn 1 whose claim will learn its row version (PostgreSQL), write the attempt too (its ``updated``), so
    that it carries that version like the intent and txn 2 can be optimistic about both. In an optimistic txn 1
    (``version``: the attempt as read) the write is guarded and made in any case: it is what checks that the
    attempt is still the one decided on, as the locked read's lock does."""
    if version is None and not guard.learns_version(conn):
        return attempt
    return await repo.update_attempt(conn, attempt, {"updated": clock.now()}, version=version)
