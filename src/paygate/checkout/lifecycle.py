"""When an open Checkout Session completes or expires, and the one transaction that does it.

A session is *settled* by :meth:`Lifecycle.settle` (on access: retrieve, list, the hosted page) and by the
expiry job (:class:`paygate.checkout.job.CheckoutExpiryJob`). The decision is pure (:func:`decide`):

* its PaymentIntent succeeded (or is authorized) → ``complete`` / ``paid`` and ``checkout.session.completed``,
  whenever that happened (on the page, after 3-D Secure, or through a status sync after a processor timeout);
* past ``expires_at + grace`` with nothing in flight → ``expired`` and ``checkout.session.expired``, and the
  PaymentIntent is canceled (``abandoned``) in the same transaction, which is only done while no money can have
  moved (requires_payment_method / requires_confirmation, or requires_action whose challenge was abandoned
  for :data:`ACTION_WINDOW_SECONDS`).

"In flight" means a live submit claim on the session row, an intent that is ``processing`` or has a
``pending_op`` (its outcome is unknown: the status sync resolves it first), or an intent in a 3-D Secure
challenge younger than the action window. Such a session stays open past its deadline until that resolves.

Every transition is a conditional UPDATE on ``status = 'open'`` under row locks (session, then intent), so the
job, page and API racing on one session change it once and emit one event.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.checkout import repository as repo
from paygate.checkout.schemas import session_object
from paygate.checkout.tables import checkout_sessions as cs
from paygate.db.engine import Database
from paygate.db.tables import payment_intents as pi
from paygate.events import service as events
from paygate.kit.clock import clock
from paygate.merchants.context import AuthContext
from paygate.payments import repository as payments_repo
from paygate.payments.model import Status
from paygate.payments.schemas import intent_object

__all__ = ["ACTION_WINDOW_SECONDS", "PAID", "Decision", "Lifecycle", "decide", "system_context"]

# How long a 3-D Secure challenge may stay unanswered before an expired session gives up on it.
ACTION_WINDOW_SECONDS = 3600
PAID = frozenset({Status.SUCCEEDED.value, Status.REQUIRES_CAPTURE.value})
_CANCELABLE = frozenset(
    {Status.REQUIRES_PAYMENT_METHOD.value, Status.REQUIRES_CONFIRMATION.value, Status.REQUIRES_ACTION.value}
)

Decision = Literal["complete", "expire", "wait", "keep"]


def system_context(session: dict[str, Any]) -> AuthContext:
    """The context paygate acts in for a session's merchant and mode when no API key is involved."""
    return AuthContext(merchant_id=session["merchant_id"], livemode=bool(session["livemode"]), key_kind="system")


def decide(session: dict[str, Any], intent: dict[str, Any], *, now: int, grace: int, force: bool = False) -> Decision:
    """What an open session should become now. ``force`` (an API ``expire``) ignores the deadline but never
    what is in flight. ``keep``: nothing to do; ``wait``: due, but a payment is in flight."""
    if session["status"] != "open":
        return "keep"
    if intent["status"] in PAID:
        return "complete"
    if not force and now <= session["expires_at"] + grace:
        return "keep"
    if session["pay_claim_until"] is not None and session["pay_claim_until"] >= now:
        return "wait"
    if intent["status"] == Status.PROCESSING or intent["pending_op"]:
        return "wait"
    if intent["status"] == Status.REQUIRES_ACTION and intent["updated"] + ACTION_WINDOW_SECONDS > now:
        return "wait"
    return "expire"


class Lifecycle:
    def __init__(self, db: Database, *, base_url: str, grace: int) -> None:
        self.db = db
        self.base_url = base_url.rstrip("/")
        self.grace = grace

    def url(self, session_id: str) -> str:
        return f"{self.base_url}/c/pay/{session_id}"

    def object(self, row: dict[str, Any], **expansions: Any) -> dict[str, Any]:
        return session_object(row, url=self.url(row["id"]), **expansions)

    # ------------------------------------------------------------------ transitions (caller's transaction)
    async def complete(self, conn: AsyncConnection, session: dict[str, Any]) -> dict[str, Any] | None:
        """Mark an open session paid and emit ``checkout.session.completed``; ``None`` if it was not open."""
        now = clock.now()
        values = {
            "status": "complete",
            "payment_status": "paid",
            "completed_at": now,
            "pay_claim": None,
            "pay_claim_until": None,
            "updated": now,
        }
        row = await repo.update_session(conn, session, values)
        if row is not None:
            await events.emit(conn, system_context(row), "checkout.session.completed", self.object(row))
        return row

    async def expire(
        self, conn: AsyncConnection, session: dict[str, Any], intent: dict[str, Any], ctx: AuthContext | None = None
    ) -> dict[str, Any] | None:
        """Expire an open session and cancel its still-cancelable intent; ``None`` if it was not open."""
        ctx = ctx or system_context(session)
        now = clock.now()
        row = await repo.update_session(conn, session, {"status": "expired", "expired_at": now, "updated": now})
        if row is None:
            return None
        if intent["status"] in _CANCELABLE and not intent["pending_op"]:
            canceled = await payments_repo.update_intent(
                conn,
                intent,
                {
                    "status": Status.CANCELED,
                    "canceled_at": now,
                    "cancellation_reason": "abandoned",
                    "next_action": None,
                    "amount_capturable": 0,
                    "updated": now,
                },
            )
            await events.emit(conn, ctx, "payment_intent.canceled", intent_object(canceled))
        await events.emit(conn, ctx, "checkout.session.expired", self.object(row))
        return row

    async def lock_pair(
        self, conn: AsyncConnection, session_id: str, *, merchant_id: str | None = None, livemode: bool | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The session and its intent, row-locked in that order (every writer here locks in this order)."""
        session = await repo.get_session(conn, session_id, merchant_id=merchant_id, livemode=livemode, lock=True)
        if session is None:
            return None
        intent = await payments_repo.get_intent(conn, system_context(session), session["payment_intent"], lock=True)
        return session, intent

    # ------------------------------------------------------------------ entry points (own transactions)
    async def needs_settling(self, session: dict[str, Any]) -> bool:
        """Cheap read-only check before taking a write transaction on access."""
        if session["status"] != "open":
            return False
        async with self.db.read() as conn:
            intent = await payments_repo.get_intent(conn, system_context(session), session["payment_intent"])
        return decide(session, intent, now=clock.now(), grace=self.grace) in ("complete", "expire")

    async def settle(self, session_id: str) -> dict[str, Any] | None:
        """Complete or expire the session if due (one transaction); returns the current row (``None``: unknown)."""
        async with self.db.write() as conn:
            pair = await self.lock_pair(conn, session_id)
            if pair is None:
                return None
            session, intent = pair
            decision = decide(session, intent, now=clock.now(), grace=self.grace)
            if decision == "complete":
                return await self.complete(conn, session) or session
            if decision == "expire":
                return await self.expire(conn, session, intent) or session
            return session

    async def settle_on_access(self, session: dict[str, Any]) -> dict[str, Any]:
        """``session`` as it is after applying what is due (a read when nothing is)."""
        if await self.needs_settling(session):
            return await self.settle(session["id"]) or session
        return session

    async def sweep(self, *, limit: int, merchant_id: str | None = None, livemode: bool | None = None) -> int:
        """Settle up to ``limit`` due sessions (of one merchant and mode, or all); returns how many changed.

        The query only selects sessions :func:`decide` would change, so a session waiting on an in-flight
        payment is not picked again and again."""
        now = clock.now()
        due = or_(
            pi.c.status.in_(sorted(PAID)),
            and_(
                cs.c.expires_at < now - self.grace,
                or_(cs.c.pay_claim_until.is_(None), cs.c.pay_claim_until < now),
                pi.c.status != Status.PROCESSING.value,
                pi.c.pending_op.is_(None),
                or_(pi.c.status != Status.REQUIRES_ACTION.value, pi.c.updated <= now - ACTION_WINDOW_SECONDS),
            ),
        )
        stmt = (
            select(cs.c.id).select_from(cs.join(pi, pi.c.id == cs.c.payment_intent)).where(cs.c.status == "open", due)
        )
        if merchant_id is not None:
            stmt = stmt.where(cs.c.merchant_id == merchant_id, cs.c.livemode == livemode)
        async with self.db.read() as conn:
            ids: list[str] = list((await conn.execute(stmt.order_by(cs.c.expires_at).limit(limit))).scalars())
        changed = 0
        for session_id in ids:
            row = await self.settle(session_id)
            if row is not None and row["status"] != "open":
                changed += 1
        return changed
