"""Reading delivery records and re-sending an event (``POST /v1/events/{id}/redeliver``, a paygate extension).

``redeliver`` makes the event due again, now, for each enabled endpoint that subscribes to it (or only the
``endpoint`` given): an existing delivery goes back to ``pending`` (its attempt count continues, so the history
stays complete); an endpoint created after the event gets a new delivery. The worker then sends it like any
other delivery, with the same ``webhook-id`` (the event id).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select, update

from paygate.db.dialect import insert_ignore
from paygate.db.engine import Database
from paygate.db.tables import events
from paygate.events.relay import new_delivery
from paygate.events.subscriptions import matches, receiving
from paygate.events.tables import webhook_attempts as wa
from paygate.events.tables import webhook_deliveries as wd
from paygate.events.tables import webhook_endpoints as we
from paygate.idempotency.service import Guard, Reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.kit.params import Params
from paygate.merchants.context import AuthContext

__all__ = ["RedeliverParams", "delivery_object", "list_deliveries", "redeliver"]


class RedeliverParams(Params):
    endpoint: str | None = None


def delivery_object(row: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "webhook_delivery",
        "event": row["event_id"],
        "webhook_endpoint": row["endpoint_id"],
        "livemode": bool(row["livemode"]),
        "status": row["status"],
        "attempt_count": row["attempts"],
        "next_attempt_at": row["next_attempt_at"] if row["status"] == "pending" else None,
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "created": row["created"],
        "attempts": [
            {
                "attempt": a["attempt"],
                "created": a["created"],
                "url": a["url"],
                "status_code": a["status_code"],
                "latency_ms": a["latency_ms"],
                "error": a["error"],
                "response_excerpt": a["response_excerpt"],
            }
            for a in attempts
        ],
    }


async def _check_event(conn: Any, ctx: AuthContext, event_id: str) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(events).where(
                    events.c.id == event_id, events.c.merchant_id == ctx.merchant_id, events.c.livemode == ctx.livemode
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ResourceMissing("event", event_id)
    return dict(row)


async def list_deliveries(db: Database, ctx: AuthContext, event_id: str) -> dict[str, Any]:
    """Every delivery of one event with its attempts, oldest first."""
    async with db.read() as conn:
        await _check_event(conn, ctx, event_id)
        rows = [
            dict(r)
            for r in (
                await conn.execute(select(wd).where(wd.c.event_id == event_id).order_by(wd.c.created, wd.c.id))
            ).mappings()
        ]
        attempts = [
            dict(a)
            for a in (
                await conn.execute(select(wa).where(wa.c.event_id == event_id).order_by(wa.c.attempt, wa.c.id))
            ).mappings()
        ]
    data = [delivery_object(r, [a for a in attempts if a["delivery_id"] == r["id"]]) for r in rows]
    return {"object": "list", "url": f"/v1/events/{event_id}/deliveries", "has_more": False, "data": data}


async def redeliver(db: Database, ctx: AuthContext, event_id: str, p: RedeliverParams, guard: Guard) -> Reply:
    now = clock.now()
    async with db.write() as conn:
        event = await _check_event(conn, ctx, event_id)
        stmt = select(we).where(receiving(ctx.merchant_id, ctx.livemode))
        if p.endpoint:
            stmt = stmt.where(we.c.id == p.endpoint)
        targets = [dict(r) for r in (await conn.execute(stmt)).mappings()]
        if p.endpoint and not targets:
            raise ResourceMissing("webhook_endpoint", p.endpoint, param="endpoint")
        if not p.endpoint:
            targets = [t for t in targets if matches(jsonx.loads(t["enabled_events"]), event["type"])]
        if not targets:
            raise InvalidRequest("No enabled webhook endpoint subscribes to this event.", code="no_webhook_endpoint")
        for t in targets:
            if not await insert_ignore(conn, wd, new_delivery(event, t["id"], now)):
                await conn.execute(
                    update(wd)
                    .where(wd.c.event_id == event_id, wd.c.endpoint_id == t["id"])
                    .values(status="pending", next_attempt_at=now, updated=now)
                )
        body = {
            "id": event_id,
            "object": "event",
            "redelivery": {"webhook_endpoints": [t["id"] for t in targets], "scheduled_at": now},
        }
        reply = Reply(200, orjson.dumps(body))
        await guard.finish(conn, reply.status, reply.body)
    return reply
