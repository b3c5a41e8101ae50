"""SQL for the ``customers`` table (the table itself lives in :mod:`paygate.vault.tables`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import locked
from paygate.vault.tables import customers, payment_methods

__all__ = ["detach_all", "get_customer", "insert_customer", "update_customer"]


async def insert_customer(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(customers).values(**row))


async def get_customer(
    conn: AsyncConnection, merchant_id: str, livemode: bool, customer_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    stmt = select(customers).where(
        customers.c.id == customer_id, customers.c.merchant_id == merchant_id, customers.c.livemode == livemode
    )
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    return dict(row) if row else None


async def update_customer(conn: AsyncConnection, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    await conn.execute(update(customers).where(customers.c.id == row["id"]).values(**values))
    return {**row, **values}


async def detach_all(conn: AsyncConnection, customer_id: str, now: int) -> None:
    """Detach every payment method of a deleted customer (none of them may be used again)."""
    await conn.execute(
        update(payment_methods)
        .where(payment_methods.c.customer == customer_id)
        .values(customer=None, detached_at=now, updated=now)
    )
