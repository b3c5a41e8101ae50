"""Refund rows, scoped to the caller's merchant and mode."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import locked
from paygate.db.tables import refunds as rf
from paygate.kit.errors import ResourceMissing
from paygate.merchants.context import AuthContext

__all__ = ["get_refund", "insert_refund", "update_refund"]


async def insert_refund(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(rf).values(**row))


async def get_refund(conn: AsyncConnection, ctx: AuthContext, refund_id: str, *, lock: bool = False) -> dict[str, Any]:
    stmt = select(rf).where(rf.c.id == refund_id, rf.c.merchant_id == ctx.merchant_id, rf.c.livemode == ctx.livemode)
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    if row is None:
        raise ResourceMissing("refund", refund_id)
    return dict(row)


async def update_refund(conn: AsyncConnection, refund: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    await conn.execute(update(rf).where(rf.c.id == refund["id"]).values(**values))
    return {**refund, **values}
