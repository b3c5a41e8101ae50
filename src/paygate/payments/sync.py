"""Status sync: resolve payments whose processor outcome paygate does not know (ARCHITECTURE.md rule 5).

An attempt is *due* when ``next_sync_at`` has passed: its authorization timed out or the response was lost
(``unknown``), the processor answered ``pending``, a capture or void is in doubt, the customer is in a 3-D
Secure challenge, or the request that made it died mid-call (every attempt is born with a ``next_sync_at`` a
minute ahead, cleared once its outcome is applied). The job asks the processor about it — by our idempotency
key, since the response carrying the processor's reference may be the thing that was lost — and applies the
answer through the same monotonic functions as a synchronous answer, so a late or repeated sync changes
nothing twice.

Claiming: ``next_sync_at`` doubles as the lease. A worker moves it ``LEASE_SECONDS`` ahead in the claiming
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so concurrent workers take different attempts and a
dead worker's attempts come back by themselves. Unanswered syncs back off exponentially, up to
``MAX_SYNC_ATTEMPTS`` (about a day), after which the attempt is left for an operator (logged).

Pending refunds (unknown outcome) are re-sent with the *same* idempotency key, which makes the processor return
the original outcome instead of refunding twice.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import PaymentResult, PaymentStatus, SyncRequest
from paygate.connectors.errors import ConnectorError
from paygate.db.engine import Database
from paygate.db.tables import payment_attempts as pa
from paygate.db.tables import refunds as rf
from paygate.kit.clock import clock
from paygate.merchants.context import AuthContext
from paygate.payments import flows
from paygate.payments import repository as repo
from paygate.routing.service import Router

__all__ = ["LEASE_SECONDS", "MAX_SYNC_ATTEMPTS", "StatusSync"]

log = structlog.get_logger("paygate.sync")

LEASE_SECONDS = 60
MAX_SYNC_ATTEMPTS = 20
REFUND_RESEND_AFTER = 30  # seconds a refund may stay pending before it is re-sent under the same key
# A processor that has *no record* of our idempotency key is only believed once the original request can no
# longer be in flight (longer than any connector timeout with retries).
NO_RECORD_GRACE_SECONDS = 120


def backoff(sync_attempts: int) -> int:
    """2 s, 4 s, 8 s … capped at one hour."""
    return int(min(3600, 2 ** min(sync_attempts + 1, 12)))


class StatusSync:
    """The worker job. ``run_once`` resolves up to ``batch`` due attempts and refunds; returns how many it
    touched. Safe to run in several processes at once."""

    name = "status_sync"

    def __init__(self, db: Database, router: Router, *, batch: int = 50) -> None:
        self.db = db
        self.router = router
        self.batch = batch

    async def run_once(self, gw: object = None) -> int:
        done = 0
        for attempt in await self._claim_attempts():
            try:
                await self._sync_attempt(attempt)
            except Exception as exc:  # one bad attempt (e.g. its processor account is gone) must not stall the rest
                log.error("sync.failed", attempt=attempt["id"], error_type=type(exc).__name__, error=str(exc)[:300])
                async with self.db.write() as conn:
                    current = await repo.get_attempt(conn, attempt["id"], lock=True)
                    if current is not None:
                        await self._reschedule(conn, current)
            done += 1
        for refund in await self._claim_refunds():
            try:
                await self._resend_refund(refund)
            except Exception as exc:  # its claim lapses after REFUND_RESEND_AFTER and it is tried again
                log.error(
                    "sync.refund_failed", refund=refund["id"], error_type=type(exc).__name__, error=str(exc)[:300]
                )
            done += 1
        return done

    # ------------------------------------------------------------------ attempts
    async def _claim_attempts(self) -> list[dict[str, Any]]:
        now = clock.now()
        async with self.db.write() as conn:
            stmt = (
                select(pa)
                .where(pa.c.next_sync_at.is_not(None), pa.c.next_sync_at <= now)
                .order_by(pa.c.next_sync_at)
                .limit(self.batch)
            )
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
            for row in rows:
                await conn.execute(
                    update(pa)
                    .where(pa.c.id == row["id"])
                    .values(next_sync_at=now + LEASE_SECONDS, sync_attempts=pa.c.sync_attempts + 1)
                )
            return rows

    async def _sync_attempt(self, attempt: dict[str, Any]) -> None:
        route = await self.router.for_attempt(attempt)
        req = SyncRequest(
            idempotency_key=attempt["id"],
            credentials=route.credentials,
            processor_reference=attempt["processor_reference"],
            amount=attempt["amount"],
            currency=attempt["currency"],
        )
        result = await self.router.invoke(route, lambda: route.connector.sync(req, route.http))  # type: ignore[arg-type]
        ctx = AuthContext(merchant_id=attempt["merchant_id"], livemode=bool(attempt["livemode"]), key_kind="system")
        async with self.db.write() as conn:
            intent = await repo.get_intent(conn, ctx, attempt["intent_id"], lock=True)
            current = await repo.get_attempt(conn, attempt["id"], lock=True)
            assert current is not None
            if not self._conclusive(result, current):
                await self._reschedule(conn, current)
                return
            assert isinstance(result, PaymentResult)
            await self._apply(conn, ctx, intent, current, result)
        log.info("sync.applied", attempt=attempt["id"], status=result.status.value)

    @staticmethod
    def _conclusive(result: PaymentResult | ConnectorError, attempt: dict[str, Any]) -> bool:
        if isinstance(result, ConnectorError) or result.status is PaymentStatus.PENDING:
            return False
        if result.status is PaymentStatus.FAILED and result.error_code == "resource_missing":
            # "No such payment": only conclusive once the original request cannot still arrive.
            return bool(clock.now() - attempt["created"] >= NO_RECORD_GRACE_SECONDS)
        return True

    async def _reschedule(self, conn: AsyncConnection, attempt: dict[str, Any]) -> None:
        n = attempt["sync_attempts"]
        if n >= MAX_SYNC_ATTEMPTS:
            log.error("sync.gave_up", attempt=attempt["id"], sync_attempts=n)
            next_at = None
        else:
            next_at = clock.now() + backoff(n)
        await repo.update_attempt(conn, attempt, {"next_sync_at": next_at})

    async def _apply(
        self,
        conn: AsyncConnection,
        ctx: AuthContext,
        intent: dict[str, Any],
        attempt: dict[str, Any],
        result: PaymentResult,
    ) -> None:
        if intent["pending_op"] == "capture" and attempt["status"] == "authorized":
            if result.status is PaymentStatus.AUTHORIZED:  # the processor never captured: let the merchant retry
                result = PaymentResult(
                    status=PaymentStatus.FAILED,
                    processor_reference=result.processor_reference,
                    error_code="capture_not_completed",
                    message="The processor has no record of the capture; it can be retried.",
                )
            amount = result.amount_captured or attempt["amount"]
            await flows.apply_capture(conn, ctx, intent, attempt, amount, result)
        elif intent["pending_op"] == "void":
            await flows.apply_void(conn, ctx, intent, attempt, intent["cancellation_reason"], result)
        elif attempt["status"] in ("pending", "unknown", "requires_action"):
            if result.status is PaymentStatus.REQUIRES_ACTION:
                if attempt["status"] != "requires_action":
                    await flows.apply_authorization(conn, ctx, intent, attempt, result)
                    attempt = await repo.get_attempt(conn, attempt["id"]) or attempt
                await self._reschedule(conn, attempt)  # keep watching until the customer finishes the challenge
                return
            if attempt["status"] == "requires_action":
                attempt = await repo.update_attempt(conn, attempt, {"status": "pending"})
            await flows.apply_authorization(conn, ctx, intent, attempt, result)
        after = await repo.get_intent(conn, ctx, intent["id"])
        # authorized with the automatic capture still to come (also right after a 3-D Secure challenge): keep asking
        if after["status"] in ("processing", "requires_action"):
            await self._reschedule(conn, (await repo.get_attempt(conn, attempt["id"])) or attempt)
        else:
            await conn.execute(update(pa).where(pa.c.id == attempt["id"]).values(next_sync_at=None))

    # ------------------------------------------------------------------ refunds
    async def _claim_refunds(self) -> list[dict[str, Any]]:
        now = clock.now()
        async with self.db.write() as conn:
            stmt = (
                select(rf)
                # a literal, not a bound parameter: the planner must see it matches ix_refunds_pending's predicate
                .where(rf.c.status == literal_column("'pending'"), rf.c.updated <= now - REFUND_RESEND_AFTER)
                .order_by(rf.c.updated)
                .limit(self.batch)
            )
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
            for row in rows:  # the updated stamp is the lease
                await conn.execute(update(rf).where(rf.c.id == row["id"]).values(updated=now))
            return rows

    async def _resend_refund(self, refund: dict[str, Any]) -> None:
        from paygate.refunds.service import apply_refund_result, send_to_processor

        ctx = AuthContext(merchant_id=refund["merchant_id"], livemode=bool(refund["livemode"]), key_kind="system")
        result = await send_to_processor(self.db, self.router, refund)
        async with self.db.write() as conn:
            current = dict((await conn.execute(select(rf).where(rf.c.id == refund["id"]))).mappings().one())
            await apply_refund_result(conn, ctx, current, result)
