"""PaymentIntent and attempt rows (SQLAlchemy Core). Every read is scoped to the caller's merchant and mode:
another merchant's id is indistinguishable from a missing one (404, never 403)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import locked
from paygate.db.tables import payment_attempts as pa
from paygate.db.tables import payment_intents as pi
from paygate.kit.errors import ResourceMissing
from paygate.merchants.context import AuthContext

__all__ = [
    "get_attempt",
    "get_intent",
    "insert_attempt",
    "insert_intent",
    "update_attempt",
    "update_intent",
]


async def insert_intent(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(pi).values(**row))


async def get_intent(
    conn: AsyncConnection, ctx: AuthContext, intent_id: str, *, lock: bool = False, param: str = "intent"
) -> dict[str, Any]:
    """The intent, or ``ResourceMissing``. ``lock=True`` takes a row lock (PostgreSQL) inside a write txn."""
    stmt = select(pi).where(pi.c.id == intent_id, pi.c.merchant_id == ctx.merchant_id, pi.c.livemode == ctx.livemode)
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    if row is None:
        raise ResourceMissing("payment_intent", intent_id, param=param)
    return dict(row)


async def update_intent(conn: AsyncConnection, intent: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Write ``values`` and return the intent with them applied."""
    await conn.execute(update(pi).where(pi.c.id == intent["id"]).values(**values))
    return {**intent, **values}


async def insert_attempt(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(pa).values(**row))


async def get_attempt(conn: AsyncConnection, attempt_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    stmt = select(pa).where(pa.c.id == attempt_id)
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    return dict(row) if row else None


async def update_attempt(conn: AsyncConnection, attempt: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    await conn.execute(update(pa).where(pa.c.id == attempt["id"]).values(**values))
    return {**attempt, **values}
