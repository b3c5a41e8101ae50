"""SQL for checkout sessions, line items and settings (SQLAlchemy Core).

Reads by API callers are scoped to merchant and mode (another merchant's id is a 404, never a 403). The hosted
page and the worker read by id alone: the session id is the capability.

The submit claim (:func:`claim_pay`) is one conditional ``UPDATE … RETURNING``: on PostgreSQL a second
concurrent UPDATE waits for the first to commit and then re-evaluates its WHERE clause against the new row (so
it matches nothing); on SQLite writers are serialised by ``BEGIN IMMEDIATE``. Either way exactly one caller gets
the row back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.checkout.tables import checkout_line_items as li
from paygate.checkout.tables import checkout_sessions as cs
from paygate.checkout.tables import checkout_settings as st
from paygate.db.dialect import insert_ignore, locked
from paygate.db.tables import merchants

__all__ = [
    "claim_pay",
    "get_session",
    "get_settings",
    "insert_line_items",
    "insert_session",
    "line_items",
    "merchant_name",
    "release_pay",
    "update_session",
    "upsert_settings",
]


async def insert_session(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(cs).values(**row))


async def insert_line_items(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(insert(li), rows)


async def get_session(
    conn: AsyncConnection,
    session_id: str,
    *,
    merchant_id: str | None = None,
    livemode: bool | None = None,
    lock: bool = False,
) -> dict[str, Any] | None:
    """The session row; scoped to ``merchant_id``/``livemode`` when given. ``lock`` takes a row lock (PG)."""
    stmt = select(cs).where(cs.c.id == session_id)
    if merchant_id is not None:
        stmt = stmt.where(cs.c.merchant_id == merchant_id, cs.c.livemode == livemode)
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    return dict(row) if row else None


async def update_session(
    conn: AsyncConnection, row: dict[str, Any], values: dict[str, Any], *, only_if_open: bool = True
) -> dict[str, Any] | None:
    """Write ``values`` if the session is still open (``only_if_open``); ``None`` when it was not."""
    stmt = update(cs).where(cs.c.id == row["id"])
    if only_if_open:
        stmt = stmt.where(cs.c.status == "open")
    done = (await conn.execute(stmt.values(**values).returning(cs.c.id))).first()
    return {**row, **values} if done is not None else None


async def line_items(conn: AsyncConnection, session_id: str) -> list[dict[str, Any]]:
    stmt = select(li).where(li.c.session_id == session_id).order_by(li.c.position)
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def claim_pay(
    conn: AsyncConnection,
    session_id: str,
    *,
    token: str,
    now: int,
    lease_seconds: int,
    grace_seconds: int,
    customer_details: str,
) -> bool:
    """Take the submit claim: only an open session, accepting submits (``expires_at + grace`` not passed), with
    no live claim. True for exactly one of any number of concurrent callers."""
    stmt = (
        update(cs)
        .where(
            cs.c.id == session_id,
            cs.c.status == "open",
            cs.c.expires_at + grace_seconds >= now,
            or_(cs.c.pay_claim_until.is_(None), cs.c.pay_claim_until < now),
        )
        .values(pay_claim=token, pay_claim_until=now + lease_seconds, customer_details=customer_details, updated=now)
        .returning(cs.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def release_pay(conn: AsyncConnection, session_id: str, token: str) -> None:
    """Drop the claim if ``token`` still holds it (a lapsed claim taken over by another submit is left alone)."""
    await conn.execute(
        update(cs)
        .where(and_(cs.c.id == session_id, cs.c.pay_claim == token))
        .values(pay_claim=None, pay_claim_until=None)
    )


async def merchant_name(conn: AsyncConnection, merchant_id: str) -> str:
    name = (await conn.execute(select(merchants.c.name).where(merchants.c.id == merchant_id))).scalar()
    return str(name or "")


async def get_settings(conn: AsyncConnection, merchant_id: str, livemode: bool) -> dict[str, Any] | None:
    stmt = select(st).where(st.c.merchant_id == merchant_id, st.c.livemode == livemode)
    row = (await conn.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def upsert_settings(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """Insert or replace the settings row of ``(merchant_id, livemode)``; safe against a concurrent first insert."""
    if not await insert_ignore(conn, st, row):
        await conn.execute(
            update(st).where(st.c.merchant_id == row["merchant_id"], st.c.livemode == row["livemode"]).values(**row)
        )
