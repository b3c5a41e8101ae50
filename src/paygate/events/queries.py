"""Reading events for the /v1/events API (Stripe's Event object)."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator
from sqlalchemy import or_, select

from paygate.db.engine import Database
from paygate.db.pagination import ListParams, list_page
from paygate.db.tables import events
from paygate.kit import jsonx
from paygate.kit.errors import ResourceMissing
from paygate.merchants.context import AuthContext

__all__ = ["EventListParams", "event_object", "list_events", "retrieve_event"]

API_VERSION = "2024-06-20"


class EventListParams(ListParams):
    type: str | None = None
    types: list[str] | None = None
    delivery_success: str | None = None

    @model_validator(mode="after")
    def _one_type(self) -> EventListParams:
        if self.type and self.types:
            raise ValueError("You may only specify one of these parameters: type, types.")
        return self


def event_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "event",
        "api_version": API_VERSION,
        "created": row["created"],
        "data": jsonx.loads(row["data"]),
        "livemode": bool(row["livemode"]),
        "pending_webhooks": 0,
        "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
        "type": row["type"],
    }


def _type_clause(pattern: str) -> Any:
    # Stripe allows a trailing wildcard: type=payment_intent.*
    if pattern.endswith("*"):
        return events.c.type.like(pattern[:-1].replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")
    return events.c.type == pattern


async def list_events(db: Database, ctx: AuthContext, params: EventListParams) -> dict[str, Any]:
    t = events
    scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode]
    if params.type:
        scope.append(_type_clause(params.type))
    if params.types:
        scope.append(or_(*[_type_clause(x) for x in params.types]))
    async with db.read() as conn:
        return await list_page(
            conn, t, scope=scope, params=params, url="/v1/events", kind="event", serialize=event_object
        )


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
    return event_object(dict(row))
