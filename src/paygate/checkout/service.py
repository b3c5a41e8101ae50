"""Checkout Sessions behind the ``/v1/checkout/*`` API, and the service methods of the hosted page.

Contracts (API half; the page half is :mod:`paygate.checkout.payflow`, reached through ``load_page`` / ``pay`` /
``finish_return`` here):

* ``create`` writes the session, its line items and the PaymentIntent it owns (amount = sum of the lines, same
  currency, metadata and customer; ``payment_intent.created``) in one transaction with the idempotent reply.
  All request checks run first (:meth:`CheckoutService.validate_create`), so a rejected request writes nothing.
* Every read is scoped to the caller's merchant and mode (another merchant's session is a 404) and applies what
  is due on access (see :mod:`paygate.checkout.lifecycle`): retrieving or listing never shows a session as open
  after it should have completed or expired.
* ``expire`` (API) expires an open session at once unless a payment is in flight (429 ``lock_timeout`` while a
  submit runs; 400 while the intent is processing or in a 3-D Secure challenge) and cancels its intent.
* Settings (``/v1/checkout/settings``, paygate extension) are per merchant and mode.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import and_, select

from paygate.checkout import payflow
from paygate.checkout import repository as repo
from paygate.checkout.lifecycle import Lifecycle, decide, system_context
from paygate.checkout.schemas import (
    CardInput,
    CreateSessionParams,
    LineItemListParams,
    LineItemView,
    PageSession,
    PayOutcome,
    SessionListParams,
    SettingsParams,
    line_item_object,
    settings_object,
)
from paygate.checkout.tables import checkout_line_items as li
from paygate.checkout.tables import checkout_sessions as cs
from paygate.checkout.validation import (
    DEFAULT_EXPIRES_IN,
    NewSession,
    check_expires_in,
    normalize_origins,
    validate_create,
)
from paygate.customers.service import CustomerService, referenced_customer
from paygate.db.engine import Database
from paygate.db.pagination import list_page
from paygate.events import service as events
from paygate.idempotency.service import Guard, Reply, error_reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, LockTimeout, ResourceMissing
from paygate.kit.ids import new_id
from paygate.merchants.context import AuthContext
from paygate.payments import repository as payments_repo
from paygate.payments.model import Status
from paygate.payments.schemas import intent_object
from paygate.payments.service import PaymentService
from paygate.settings import Settings

__all__ = ["CardInput", "CheckoutService", "LineItemView", "PageSession", "PayOutcome", "new_session_id"]

_EXPANDABLE = frozenset({"line_items", "payment_intent"})
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_session_id(livemode: bool) -> str:
    """``cs_test_…`` / ``cs_live_…`` + 8 characters of creation time in milliseconds (ids of one second still
    list in creation order) + 24 random base62 characters (about 143 bits; the id alone opens the hosted page,
    so it must be unguessable): 40 characters, the width of every object id column."""
    ms, stamp = time.time_ns() // 1_000_000, []
    for _ in range(8):
        ms, r = divmod(ms, 62)
        stamp.append(_B62[r])
    random_part = "".join(secrets.choice(_B62) for _ in range(24))
    return f"cs_{'live' if livemode else 'test'}_" + "".join(reversed(stamp)) + random_part


def _check_expand(expand: list[str]) -> None:
    for item in expand:
        if item not in _EXPANDABLE:
            raise InvalidRequest(f"This property cannot be expanded ({item[:64]}).", param="expand")


def _default_settings(now: int = 0) -> dict[str, Any]:
    return {"default_expires_in": DEFAULT_EXPIRES_IN, "allowed_frame_ancestors": "[]", "updated": now}


class CheckoutService:
    def __init__(
        self, db: Database, payments: PaymentService, customers: CustomerService | None, settings: Settings
    ) -> None:
        self.db = db
        self.payments = payments
        self.customers = customers
        self.settings = settings
        self.grace = settings.checkout_grace_seconds
        self.lifecycle = Lifecycle(db, base_url=settings.base_url(), grace=self.grace)

    # ------------------------------------------------------------------ create
    async def validate_create(self, ctx: AuthContext, p: CreateSessionParams) -> NewSession:
        """Every check of a create request (typed 400s); runs before the idempotency key is claimed."""
        _check_expand(p.expand)
        async with self.db.read() as conn:
            stored = await repo.get_settings(conn, ctx.merchant_id, ctx.livemode)
        default = (stored or _default_settings())["default_expires_in"]
        new = validate_create(p, now=clock.now(), default_expires_in=default)
        if p.customer is not None:
            customer = await referenced_customer(self.customers, ctx, p.customer)
            new = replace(new, prefill_email=customer["email"] or None)
        return new

    async def create(self, ctx: AuthContext, new: NewSession, guard: Guard) -> Reply:
        p = new.params
        now = clock.now()
        session_id = new_session_id(ctx.livemode)
        intent_id = new_id("pi")
        intent = payments_repo.new_intent_row(
            ctx,
            intent_id,
            amount=new.amount_total,
            currency=new.currency,
            status=Status.REQUIRES_PAYMENT_METHOD,
            now=now,
            metadata=p.metadata,
            customer=p.customer,
        )
        email = new.prefill_email
        session: dict[str, Any] = {
            "id": session_id,
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "currency": new.currency,
            "amount_subtotal": new.amount_total,
            "amount_total": new.amount_total,
            "payment_intent": intent_id,
            "success_url": p.success_url,
            "cancel_url": p.cancel_url or None,
            "customer": p.customer,
            "customer_email": p.customer_email,
            "customer_details": jsonx.dumps({"email": email}) if email else None,
            "client_reference_id": p.client_reference_id,
            "metadata": jsonx.dumps(p.metadata),
            "locale": p.locale,
            "expires_at": new.expires_at,
            "pay_claim": None,
            "pay_claim_until": None,
            "completed_at": None,
            "expired_at": None,
            "created": now,
            "updated": now,
        }
        lines = [
            {
                "id": new_id("li"),
                "session_id": session_id,
                "position": i,
                "name": line.name,
                "description": line.description,
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "amount_total": line.amount_total,
                "currency": new.currency,
                "price_id": new_id("price"),
                "product_id": new_id("prod"),
            }
            for i, line in enumerate(new.lines)
        ]
        async with self.db.write() as conn:
            await payments_repo.insert_intent(conn, intent)
            await repo.insert_session(conn, session)
            await repo.insert_line_items(conn, lines)
            await events.emit(conn, ctx, "payment_intent.created", intent_object(intent))
            reply = Reply(200, orjson.dumps(self._object(session, lines, intent, p.expand)))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    # ------------------------------------------------------------------ reads
    def _object(
        self,
        row: dict[str, Any],
        lines: list[dict[str, Any]] | None,
        intent: dict[str, Any] | None,
        expand: list[str],
    ) -> dict[str, Any]:
        expansions: dict[str, Any] = {}
        if "line_items" in expand and lines is not None:
            expansions["line_items"] = self._line_list(row, lines, has_more=False)
        if "payment_intent" in expand and intent is not None:
            expansions["payment_intent"] = intent_object(intent)
        return self.lifecycle.object(row, **expansions)

    def _line_list(self, row: dict[str, Any], lines: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [line_item_object(x, livemode=bool(row["livemode"]), created=row["created"]) for x in lines],
            "has_more": has_more,
            "url": f"/v1/checkout/sessions/{row['id']}/line_items",
        }

    async def _scoped(self, ctx: AuthContext, session_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await repo.get_session(conn, session_id, merchant_id=ctx.merchant_id, livemode=ctx.livemode)
        if row is None:
            raise ResourceMissing("checkout.session", session_id)
        return row

    async def _expanded(self, row: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        lines = intent = None
        if expand:
            async with self.db.read() as conn:
                if "line_items" in expand:
                    lines = await repo.line_items(conn, row["id"])
                if "payment_intent" in expand:
                    intent = await payments_repo.get_intent(conn, system_context(row), row["payment_intent"])
        return self._object(row, lines, intent, expand)

    async def retrieve(self, ctx: AuthContext, session_id: str, expand: list[str]) -> dict[str, Any]:
        _check_expand(expand)
        row = await self.lifecycle.settle_on_access(await self._scoped(ctx, session_id))
        return await self._expanded(row, expand)

    async def list_sessions(self, ctx: AuthContext, params: SessionListParams) -> dict[str, Any]:
        await self.lifecycle.sweep(limit=100, merchant_id=ctx.merchant_id, livemode=ctx.livemode)
        scope = [cs.c.merchant_id == ctx.merchant_id, cs.c.livemode == ctx.livemode]
        if params.payment_intent is not None:
            scope.append(cs.c.payment_intent == params.payment_intent)
        if params.status is not None:
            scope.append(cs.c.status == params.status)
        if params.customer is not None:
            scope.append(cs.c.customer == params.customer)
        async with self.db.read() as conn:
            return await list_page(
                conn,
                cs,
                scope=scope,
                params=params,
                url="/v1/checkout/sessions",
                kind="checkout.session",
                serialize=self.lifecycle.object,
            )

    async def list_line_items(self, ctx: AuthContext, session_id: str, p: LineItemListParams) -> dict[str, Any]:
        row = await self._scoped(ctx, session_id)
        cursor = p.starting_after or p.ending_before
        if p.starting_after and p.ending_before:
            raise InvalidRequest(
                "You may only specify one of these parameters: starting_after, ending_before.", param="ending_before"
            )
        where = [li.c.session_id == session_id]
        async with self.db.read() as conn:
            if cursor:
                position = (
                    await conn.execute(
                        select(li.c.position).where(and_(li.c.session_id == session_id, li.c.id == cursor))
                    )
                ).scalar()
                if position is None:
                    raise ResourceMissing(
                        "line_item", cursor, param="ending_before" if p.ending_before else "starting_after"
                    )
                where.append(li.c.position > position if p.starting_after else li.c.position < position)
            order = li.c.position.desc() if p.ending_before else li.c.position.asc()
            stmt = select(li).where(*where).order_by(order).limit(p.limit + 1)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
        has_more = len(rows) > p.limit
        rows = rows[: p.limit]
        if p.ending_before:
            rows.reverse()
        return self._line_list(row, rows, has_more=has_more)

    # ------------------------------------------------------------------ expire (API)
    async def expire(self, ctx: AuthContext, session_id: str, expand: list[str], guard: Guard) -> Reply:
        _check_expand(expand)
        lc = self.lifecycle
        async with self.db.write() as conn:
            pair = await lc.lock_pair(conn, session_id, merchant_id=ctx.merchant_id, livemode=ctx.livemode)
            if pair is None:
                raise ResourceMissing("checkout.session", session_id)
            session, intent = pair
            decision = "keep" if session["status"] != "open" else _expire_decision(session, intent, self.grace)
            if decision == "expire":
                row = await lc.expire(conn, session, intent, ctx)
                assert row is not None
                reply = Reply(200, orjson.dumps(self._object(row, None, None, [])))
                await guard.finish(conn, reply.status, reply.body)
                return reply
            if decision == "wait":
                if session["pay_claim_until"] is not None and session["pay_claim_until"] >= clock.now():
                    raise LockTimeout(session_id)
                raise InvalidRequest(
                    "This Checkout Session has a payment in progress (processing or awaiting 3-D Secure "
                    "authentication); it cannot be expired until that payment resolves.",
                    code="checkout_session_payment_in_progress",
                )
            if decision == "complete":
                session = await lc.complete(conn, session) or session
            reply = error_reply(
                InvalidRequest(
                    f'Only Checkout Sessions with a status in ["open"] can be expired; this one is '
                    f"{session['status']}.",
                    code="checkout_session_unexpected_state",
                )
            )
            await guard.finish(conn, reply.status, reply.body)
            return reply

    # ------------------------------------------------------------------ settings
    async def get_settings(self, ctx: AuthContext) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = await repo.get_settings(conn, ctx.merchant_id, ctx.livemode)
        return settings_object(row or _default_settings(), livemode=ctx.livemode)

    def validate_settings(self, p: SettingsParams) -> tuple[int | None, list[str] | None]:
        if p.default_expires_in is not None:
            check_expires_in(p.default_expires_in, "default_expires_in")
        origins = normalize_origins(p.allowed_frame_ancestors) if p.allowed_frame_ancestors is not None else None
        return p.default_expires_in, origins

    async def update_settings(
        self, ctx: AuthContext, expires_in: int | None, origins: list[str] | None, guard: Guard
    ) -> Reply:
        async with self.db.write() as conn:
            current = await repo.get_settings(conn, ctx.merchant_id, ctx.livemode) or _default_settings()
            row = {
                "merchant_id": ctx.merchant_id,
                "livemode": ctx.livemode,
                "default_expires_in": expires_in if expires_in is not None else current["default_expires_in"],
                "allowed_frame_ancestors": jsonx.dumps(origins)
                if origins is not None
                else current["allowed_frame_ancestors"],
                "updated": clock.now(),
            }
            await repo.upsert_settings(conn, row)
            reply = Reply(200, orjson.dumps(settings_object(row, livemode=ctx.livemode)))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    async def frame_ancestors(self, merchant_id: str, livemode: bool) -> list[str]:
        async with self.db.read() as conn:
            row = await repo.get_settings(conn, merchant_id, livemode)
        return list(jsonx.loads(row["allowed_frame_ancestors"])) if row else []

    # ------------------------------------------------------------------ the hosted page
    async def load_page(self, session_id: str) -> PageSession | None:
        """The page's view of a session (``None`` if unknown), after applying what is due on access."""
        return await payflow.load_page(self, session_id)

    async def pay(self, session_id: str, card: CardInput, *, return_url: str) -> PayOutcome:
        """Submit a card for the session (at most one payment per session; see :mod:`paygate.checkout.payflow`)."""
        return await payflow.pay(self, session_id, card, return_url=return_url)

    async def finish_return(self, session_id: str) -> PayOutcome:
        """The customer is back from 3-D Secure: report (and apply) where the payment stands."""
        return await payflow.finish_return(self, session_id)


def _expire_decision(session: dict[str, Any], intent: dict[str, Any], grace: int) -> str:
    return decide(session, intent, now=clock.now(), grace=grace, force=True)
