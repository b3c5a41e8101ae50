"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["insert_ignore", "locked"]


async def insert_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``; returns True when this call inserted the row.

    On PostgreSQL a concurrent insert of the same unique key blocks until the other transaction ends, then
    does nothing: exactly one caller sees True.
    """
    mod: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    pk = next(iter(table.primary_key.columns))
    stmt = mod.insert(table).values(**values).on_conflict_do_nothing().returning(pk)
    # RETURNING, not rowcount: psycopg's async cursor reports no rowcount for a DO NOTHING insert.
    return (await conn.execute(stmt)).first() is not None


def locked(stmt: Select[Any], conn: AsyncConnection) -> Select[Any]:
    """Add ``FOR UPDATE`` on PostgreSQL. SQLite needs none: write transactions hold the database write lock
    from ``BEGIN IMMEDIATE`` on."""
    return stmt.with_for_update() if conn.dialect.name == "postgresql" else stmt
