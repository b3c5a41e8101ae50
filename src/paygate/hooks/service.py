"""Receiving processor webhooks: store raw, verify, dedupe, queue — and answer fast.

Contract of :func:`receive` (what ``POST /hooks/{connector}/{account}`` does, in this order):

1. Unknown connector/account → 404, nothing stored.
2. The raw body and headers are stored first, in their own transaction (``status = received``), so even a
   request that fails later leaves evidence.
3. The signature is verified with the connector's scheme (``verify_webhook``: simulator HMAC, ``Stripe-Signature``
   with 300 s tolerance, Adyen HMAC) against the time of arrival. Forged, tampered or stale → the row becomes
   ``rejected`` and the answer is 400; no payment state changes.
4. The event is parsed; its processor event id is written to the row. The unique constraint on
   (connector, account, event id) deduplicates: a repeat becomes ``duplicate`` (answered 200, never applied).
5. The first copy becomes ``queued``; the worker (:class:`paygate.hooks.job.InboundApplyJob`) applies it. The
   answer (200) never waits for the apply step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from paygate.connectors.base import InboundWebhook
from paygate.hooks.accounts import resolve_account
from paygate.hooks.tables import inbound_webhooks as ih
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.ids import new_id

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["Received", "receive"]


@dataclass(frozen=True, slots=True)
class Received:
    status: int  # HTTP status to answer
    outcome: str  # unknown_account | rejected | unparseable | duplicate | queued
    id: str | None = None
    event_id: str | None = None


async def receive(gw: Gateway, connector_name: str, account_id: str, body: bytes, headers: dict[str, str]) -> Received:
    account = await resolve_account(gw, connector_name, account_id)
    if account is None:
        return Received(404, "unknown_account")
    now = clock.now()
    row_id = new_id("ihk")
    lowered = {k.lower(): v for k, v in headers.items()}
    async with gw.db.write() as conn:
        await conn.execute(
            ih.insert().values(
                id=row_id,
                connector=connector_name,
                account_id=account_id,
                body=body,
                headers=jsonx.dumps(lowered),
                received_at=now,
                status="received",
                attempts=0,
            )
        )
    hook = InboundWebhook(body=body, headers=lowered, received_at=now)
    if not account.connector.verify_webhook(hook, account.webhook_secret):
        await _set(gw, row_id, status="rejected", outcome="signature verification failed")
        return Received(400, "rejected", row_id)
    try:
        event = account.connector.parse_webhook(hook)
    except Exception as exc:  # a signed but unparseable body: keep it for an operator, do not retry
        await _set(gw, row_id, status="failed", outcome=f"unparseable: {type(exc).__name__}")
        return Received(400, "unparseable", row_id)
    if not event.event_id:
        await _set(gw, row_id, status="failed", outcome="event has no id")
        return Received(400, "unparseable", row_id)
    try:
        async with gw.db.write() as conn:
            await conn.execute(
                update(ih)
                .where(ih.c.id == row_id)
                .values(status="queued", event_id=event.event_id, event_type=event.raw_type, next_attempt_at=now)
            )
    except IntegrityError:
        await _set(gw, row_id, status="duplicate", event_type=event.raw_type, outcome=f"duplicate of {event.event_id}")
        return Received(200, "duplicate", row_id, event.event_id)
    return Received(200, "queued", row_id, event.event_id)


async def _set(gw: Gateway, row_id: str, **values: object) -> None:
    async with gw.db.write() as conn:
        await conn.execute(update(ih).where(ih.c.id == row_id).values(**values))
