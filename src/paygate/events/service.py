"""Writing events to the transactional outbox.

``emit`` must be called with the same connection (transaction) as the state change it describes, so an event
exists if and only if the change committed (ARCHITECTURE.md rule 8). Each event also gets its row in
``event_outbox``, the relay's queue: the relay in the worker hands the event on to webhooks and brokers, then
deletes that row (``events`` itself is never updated).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.prepared import Prepared
from paygate.db.tables import event_outbox, events
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.ids import new_id
from paygate.merchants.context import AuthContext

__all__ = ["emit", "emit_many"]

_INSERT = Prepared(insert(events))  # compiled once, sent straight to the driver (paygate.db.prepared)
_QUEUE = Prepared(insert(event_outbox))


def _row(
    ctx: AuthContext, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None, now: int
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous:
        data["previous_attributes"] = previous
    return {
        "id": new_id("evt"),
        "merchant_id": ctx.merchant_id,
        "livemode": ctx.livemode,
        "type": type_,
        "object_id": obj.get("id"),
        "data": jsonx.dumps(data),
        "request_id": ctx.request_id or None,
        "idempotency_key": ctx.idempotency_key,
        "created": now,
    }


async def emit(
    conn: AsyncConnection,
    ctx: AuthContext,
    type_: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
) -> str:
    """Insert one event in the caller's transaction; returns its id."""
    row = _row(ctx, type_, obj, previous, clock.now())
    await _INSERT.execute(conn, row)
    await _QUEUE.execute(conn, {"created": row["created"], "event_id": row["id"]})
    return str(row["id"])


async def emit_many(conn: AsyncConnection, ctx: AuthContext, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Insert several events with one statement (the payment hot path emits two or three at once)."""
    if not items:
        return
    now = clock.now()
    rows = [_row(ctx, t, o, None, now) for t, o in items]
    await _INSERT.execute_many(conn, rows)
    await _QUEUE.execute_many(conn, [{"created": now, "event_id": row["id"]} for row in rows])
