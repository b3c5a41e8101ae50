"""Reading events for the /v1/events API (Stripe's Event object).

``pending_webhooks`` is, as at Stripe, the number of the merchant's webhook endpoints this event has not yet been
delivered to successfully: its deliveries still retrying or given up (``pending``/``failed``), and, while the
event waits in the outbox for the relay (milliseconds after its change), the enabled endpoints subscribed to its
type. ``delivery_success=true`` lists the events with none, ``false`` those with some (an event still in the
outbox counts as pending when the merchant has an enabled endpoint).
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from sqlalchemy import Select, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.engine import Database
from paygate.db.pagination import ListParams, list_page
from paygate.db.tables import event_outbox as ob
from paygate.db.tables import events
from paygate.events.subscriptions import matches, receiving
from paygate.events.tables import webhook_deliveries as wd
from paygate.events.tables import webhook_endpoints as we
from paygate.kit import jsonx
from paygate.kit.errors import ResourceMissing
from paygate.kit.params import StrictBool
from paygate.merchants.context import AuthContext

__all__ = ["EventListParams", "event_object", "list_events", "retrieve_event"]

API_VERSION = "2024-06-20"


class EventListParams(ListParams):
    type: str | None = None
    types: list[str] | None = None
    delivery_success: StrictBool | None = None

    @model_validator(mode="after")
    def _one_type(self) -> EventListParams:
        if self.type and self.types:
            raise ValueError("You may only specify one of these parameters: type, types.")
        return self


_UNDELIVERED = ("pending", "failed")


def event_object(row: dict[str, Any], pending_webhooks: int = 0) -> dict[str, Any]:
    """The Event object of an ``events`` row (``pending_webhooks``: see the module docstring)."""
    return {
        "id": row["id"],
        "object": "event",
        "api_version": API_VERSION,
        "created": row["created"],
        "data": jsonx.loads(row["data"]),
        "livemode": bool(row["livemode"]),
        "pending_webhooks": pending_webhooks,
        "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
        "type": row["type"],
    }


def _type_clause(pattern: str) -> Any:
    # Stripe allows a trailing wildcard: type=payment_intent.*
    if pattern.endswith("*"):
        return events.c.type.like(pattern[:-1].replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")
    return events.c.type == pattern


def _enabled_endpoints(ctx: AuthContext) -> Select[Any]:
    return select(we.c.enabled_events).where(receiving(ctx.merchant_id, ctx.livemode))


async def _pending_webhooks(conn: AsyncConnection, ctx: AuthContext, rows: list[dict[str, Any]]) -> dict[str, int]:
    """``pending_webhooks`` of each event row (module docstring), by event id; three queries per page at most."""
    ids = [r["id"] for r in rows]
    if not ids:
        return {}
    undelivered = (
        select(wd.c.event_id, func.count())
        .where(wd.c.event_id.in_(ids), wd.c.status.in_(_UNDELIVERED))
        .group_by(wd.c.event_id)
    )
    counts: dict[str, int] = {row[0]: row[1] for row in (await conn.execute(undelivered)).all()}
    queued: set[str] = set((await conn.execute(select(ob.c.event_id).where(ob.c.event_id.in_(ids)))).scalars())
    if queued:
        found = (await conn.execute(_enabled_endpoints(ctx))).scalars()
        subscribed: list[list[str]] = [jsonx.loads(e) for e in found]
        for r in rows:
            if r["id"] in queued:
                counts[r["id"]] = counts.get(r["id"], 0) + sum(matches(e, r["type"]) for e in subscribed)
    return counts


async def list_events(db: Database, ctx: AuthContext, params: EventListParams) -> dict[str, Any]:
    t = events
    scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode]
    if params.type:
        scope.append(_type_clause(params.type))
    if params.types:
        scope.append(or_(*[_type_clause(x) for x in params.types]))
    if params.delivery_success is not None:
        undelivered = exists().where(wd.c.event_id == t.c.id, wd.c.status.in_(_UNDELIVERED))
        awaiting = exists().where(ob.c.event_id == t.c.id) & exists(_enabled_endpoints(ctx))
        pending = or_(undelivered, awaiting)
        scope.append(not_(pending) if params.delivery_success else pending)
    async with db.read() as conn:
        page = await list_page(conn, t, scope=scope, params=params, url="/v1/events", kind="event", serialize=dict)
        counts = await _pending_webhooks(conn, ctx, page["data"])
    page["data"] = [event_object(r, counts.get(r["id"], 0)) for r in page["data"]]
    return page


async def retrieve_event(db: Database, ctx: AuthContext, event_id: str) -> dict[str, Any]:
    t = events
    async with db.read() as conn:
        row = (
            (
                await conn.execute(
                    select(t).where(
                        t.c.id == event_id, t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ResourceMissing("event", event_id)
        counts = await _pending_webhooks(conn, ctx, [dict(row)])
    return event_object(dict(row), counts.get(event_id, 0))
