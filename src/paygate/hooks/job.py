"""Worker job applying queued inbound processor webhooks (see :mod:`paygate.hooks.apply`).

Rows with ``status = queued`` and a due ``next_attempt_at`` are claimed with a lease
(:mod:`paygate.worker.claims`), re-parsed from the stored raw body, applied, and marked ``applied`` (or
``ignored`` / ``conflict`` by the outcome) only while the lease is held. A failure (e.g. the processor could not
be asked during a conflict) keeps the row queued and retries with backoff (30 s doubling, at most 10 tries, then
``failed`` for an operator). Applying is idempotent, so a row re-applied after a worker died changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import update

from paygate.connectors.base import InboundWebhook
from paygate.hooks.accounts import resolve_account
from paygate.hooks.apply import apply_event
from paygate.hooks.tables import inbound_webhooks as ih
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.worker import claims

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["InboundApplyJob"]

log = structlog.get_logger("paygate.hooks")
MAX_TRIES = 10


class InboundApplyJob:
    name = "inbound_webhooks"

    def __init__(self, *, owner: str | None = None, batch_size: int = 20, lease_seconds: int = 60) -> None:
        self.owner = owner or claims.worker_id()
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds

    async def run_once(self, gw: Gateway) -> int:
        now = clock.now()
        async with gw.db.write() as conn:
            rows = await claims.claim(
                conn,
                ih,
                where=[ih.c.status == "queued", ih.c.next_attempt_at <= now],
                order_by=[ih.c.received_at, ih.c.id],
                limit=self.batch_size,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                now=now,
            )
        done = 0
        try:
            for i, row in enumerate(rows):  # in arrival order: one at a time keeps the log readable
                await self._apply(gw, row)
                done = i + 1
        except asyncio.CancelledError:
            async with gw.db.write() as conn:
                await claims.release(conn, ih, [r["id"] for r in rows[done:]], self.owner)
            raise
        return len(rows)

    async def _apply(self, gw: Gateway, row: dict[str, object]) -> None:
        row_id = str(row["id"])
        values: dict[str, object] = {"lease_owner": None, "lease_expires_at": None}
        try:
            account = await resolve_account(gw, str(row["connector"]), str(row["account_id"]))
            if account is None:
                raise RuntimeError("processor account no longer configured")
            body = row["body"]
            assert isinstance(body, bytes)
            hook = InboundWebhook(
                body=body, headers=jsonx.loads(str(row["headers"])), received_at=int(str(row["received_at"]))
            )
            outcome = await apply_event(gw, account.connector_name, account.connector.parse_webhook(hook))
            status = outcome.split(":", 1)[0]
            values.update(
                status="conflict" if status == "conflict" else "ignored" if status == "ignored" else "applied",
                outcome=outcome[:1000],
                applied_at=clock.now(),
            )
        except Exception as exc:
            tries = int(str(row["attempts"])) + 1
            log.warning("inbound_apply_failed", id=row_id, error=str(exc)[:300], tries=tries)
            values.update(attempts=tries, outcome=f"error: {str(exc)[:500]}")
            if tries >= MAX_TRIES:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = clock.now() + 30 * 2 ** (tries - 1)
        async with gw.db.write() as conn:
            await conn.execute(update(ih).where(claims.owned(ih, row_id, self.owner)).values(**values))
