"""Refund rows, scoped to the caller's merchant and mode. Statements built once and run through
:class:`paygate.db.prepared.Prepared` (see :mod:`paygate.payments.repository` for why); an ``UPDATE`` takes its
``SET`` columns from the keys of the parameter dict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.prepared import Prepared, guarded_update
from paygate.db.tables import refunds as rf
from paygate.kit.errors import ResourceMissing
from paygate.merchants.context import AuthContext

__all__ = ["get_refund", "insert_refund", "update_refund"]

_INSERT = Prepared(insert(rf))
_UPDATE = Prepared(update(rf).where(rf.c.id == bindparam("_id")))
_UPDATE_GUARDED = guarded_update(rf)
_by_id = select(rf).where(
    rf.c.id == bindparam("_id"), rf.c.merchant_id == bindparam("_merchant"), rf.c.livemode == bindparam("_livemode")
)
_GET = Prepared(_by_id)
_GET_LOCKED = Prepared(_by_id.with_for_update())


async def insert_refund(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await _INSERT.execute(conn, row)


async def get_refund(conn: AsyncConnection, ctx: AuthContext, refund_id: str, *, lock: bool = False) -> dict[str, Any]:
    """The refund, or ``ResourceMissing``. ``lock=True`` takes a row lock (PostgreSQL) inside a write txn."""
    stmt = _GET_LOCKED if lock and conn.dialect.name == "postgresql" else _GET
    row = await stmt.fetch_one(conn, {"_id": refund_id, "_merchant": ctx.merchant_id, "_livemode": ctx.livemode})
    if row is None:
        raise ResourceMissing("refund", refund_id)
    return row


async def update_refund(
    conn: AsyncConnection, refund: dict[str, Any], values: dict[str, Any], *, version: str | None = None
) -> dict[str, Any]:
    """Write ``values`` and return the refund with them applied; with ``version`` (PostgreSQL) a guarded write,
    as :func:`paygate.payments.repository.update_intent`."""
    if version is not None:
        _UPDATE_GUARDED.queue_guarded(conn, {**values, "_id": refund["id"], "_version": version})
    else:
        await _UPDATE.execute(conn, {**values, "_id": refund["id"]})
    return {**refund, **values}
