"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, Table, Text, cast, insert, literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.prepared import Prepared

__all__ = ["insert_ignore", "insert_returning_id", "insert_unique", "locked"]

_IGNORE: dict[tuple[str, str], Prepared] = {}  # (dialect, table) -> INSERT … ON CONFLICT DO NOTHING RETURNING pk
_RETURNING: dict[str, Prepared] = {}  # table -> INSERT … RETURNING pk, xmin (PostgreSQL, queued)
_VERSION = "_row_version"


def _insert_ignore_stmt(conn: AsyncConnection, table: Table) -> Prepared:
    key = (conn.dialect.name, table.name)
    stmt = _IGNORE.get(key)
    if stmt is None:
        mod: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        pk = next(iter(table.primary_key.columns))
        stmt = _IGNORE[key] = Prepared(mod.insert(table).on_conflict_do_nothing().returning(pk))
    return stmt


async def insert_returning_id(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING <primary key>``: the new row's key, or ``None`` when a row
    with the same unique key already existed (nothing inserted).

    On PostgreSQL a concurrent insert of the same unique key blocks until the other transaction ends, then
    does nothing: exactly one caller gets a key.
    """
    # RETURNING, not rowcount: one answer on both drivers, whatever rowcount a DO NOTHING insert reports.
    return await _insert_ignore_stmt(conn, table).scalar(conn, values)


async def insert_unique(
    conn: AsyncConnection,
    table: Table,
    values: dict[str, Any],
    *,
    on_id: Callable[[Any], None],
    taken: Callable[[], Exception],
    on_version: Callable[[str], None] | None = None,
) -> None:
    """Insert a row that a unique key of ``table`` may refuse: ``on_id(primary key)`` once it is inserted;
    ``taken()`` is raised when a row with the same unique key exists (and the transaction must roll back).

    Inside a PostgreSQL write transaction the insert is queued with the transaction's other writes
    (:meth:`Prepared.queue_returning <paygate.db.prepared.Prepared.queue_returning>`): ``on_id`` runs and
    ``taken()`` is raised where the queue is sent, at the latest when the transaction ends — so a transaction
    of queued writes ending in this insert is one statement and one round trip. Elsewhere (SQLite) it runs at
    once, as :func:`insert_returning_id`. A concurrent insert of the same key makes this one wait until the
    other transaction ends, then fail (it committed) or succeed (it rolled back).

    ``on_version`` (queued PostgreSQL insert only) gets the new row's version, ``xmin::text``: the id of the
    transaction, which every row it wrote carries until that row is changed — for guarded writes
    (:mod:`paygate.db.pgbatch`) on those rows later. It is not called elsewhere.
    """
    stmt = _RETURNING.get(table.name)
    if stmt is None:
        version = cast(literal_column("xmin"), Text).label(_VERSION)
        stmt = _RETURNING[table.name] = Prepared(insert(table).returning(*table.primary_key.columns, version))

    def deliver(row: dict[str, Any] | None) -> None:
        assert row is not None  # an INSERT without ON CONFLICT returns its row or fails
        on_id(next(iter(row.values())))
        if on_version is not None:
            on_version(row[_VERSION])

    if stmt.queue_returning(conn, values, deliver, taken=taken):
        return
    row_id = await insert_returning_id(conn, table, values)
    if row_id is None:
        raise taken()
    on_id(row_id)


async def insert_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``; returns True when this call inserted the row (see
    :func:`insert_returning_id`)."""
    return await insert_returning_id(conn, table, values) is not None


def locked(stmt: Select[Any], conn: AsyncConnection, for_update: Select[Any] | None = None) -> Select[Any]:
    """Add ``FOR UPDATE`` on PostgreSQL (``for_update``: the same statement with it, prebuilt). SQLite needs
    none: write transactions hold the database write lock from ``BEGIN IMMEDIATE`` on."""
    if conn.dialect.name != "postgresql":
        return stmt
    return for_update if for_update is not None else stmt.with_for_update()
