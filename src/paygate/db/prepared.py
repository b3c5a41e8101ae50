"""Hot-path statements sent straight to the database driver, compiled once; on PostgreSQL, writes pipelined.

SQLAlchemy Core still defines every statement (one schema, one place for dialect differences), but executing a
Core statement costs about 50 µs of Python per call on top of the driver (execution context, greenlet hop,
result wrapping) — with fifteen statements, most of the CPU a payment cost. :class:`Prepared` compiles a
statement once per dialect and per set of parameter names, then runs the SQL text on the driver connection the
:class:`~sqlalchemy.ext.asyncio.AsyncConnection` holds, in the same transaction:

* SQLite (the inline writer connection of :mod:`paygate.db.sqlite`): ``sqlite3`` directly, on the event loop,
  with named parameters; ``Boolean`` result columns become ``bool`` as SQLAlchemy would return them.
* PostgreSQL (psycopg 3): psycopg prepares a statement server-side after a few executions, so the hot statements
  are parsed and planned once per connection. Inside :meth:`Database.write <paygate.db.engine.Database.write>`
  (which wraps the body in :func:`pipelined_writes`) statements that return nothing are **queued** rather than
  sent: the queue goes out in one pipeline (one network round trip) together with the next read or with the
  ``COMMIT``. A payment's write transaction is then one or two round trips instead of one per statement.
  Before any statement SQLAlchemy executes on that connection the queue is flushed, so order is kept.
* Anything else (the aiosqlite read connections): ordinary SQLAlchemy execution of the same statement.

Contract: parameters are a dict per row whose keys are the statement's bind names (``bindparam("_id")`` →
``"_id"``) and, for an ``INSERT``/``UPDATE`` built without ``.values()``, column names: as with
``conn.execute(stmt, params)``, those keys decide the columns written. Scalar column defaults fill missing
``INSERT`` columns. Driver errors are raised as SQLAlchemy's wrappers (``IntegrityError`` …) as
``conn.execute`` would; an error of a queued write surfaces at the flush (the next read or the commit), still
inside the transaction, which then rolls back. Not applied on the direct path: SQLAlchemy execution events and
``echo`` logging, callable defaults (refused at compile time) and type processors other than ``Boolean``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Boolean, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util import await_only

from paygate.db.sqlite import driver_sqlite

__all__ = ["Prepared", "fetch_two", "flush_before_sqlalchemy", "pipelined_writes"]

_SQLITE_NAMED: Dialect = sqlite.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
_POSTGRES: Dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]

# PostgreSQL writes queued per driver connection while a Database.write() transaction is open on it:
# id(psycopg connection) -> [(sql, params or rows, executemany?)].
_QUEUED: dict[int, list[tuple[str, Any, bool]]] = {}


class _Compiled:
    __slots__ = ("bools", "defaults", "sql")

    def __init__(self, sql: str, defaults: dict[str, Any], bools: tuple[str, ...]) -> None:
        self.sql = sql
        self.defaults = defaults  # literal values in the statement, scalar defaults of columns not named
        self.bools = bools  # result columns to turn into bool (SQLite stores 0/1)

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **params} if self.defaults else params


class Prepared:
    """One Core statement, compiled on first use per dialect and parameter-name set (a bounded set: the
    call sites' key sets). See the module docstring."""

    __slots__ = ("_cache", "stmt")

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._cache: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def _compiled(self, dialect: Dialect, keys: frozenset[str]) -> _Compiled:
        key = (dialect.name, keys)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        compiled: Any = self.stmt.compile(dialect=dialect, column_keys=sorted(keys))
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("Prepared statements cannot use expanding or literal-execute parameters")
        defaults: dict[str, Any] = {  # values written into the statement, e.g. .values(state="finished")
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if name not in keys and not bind.required and bind.callable is None
        }
        for col in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = col.default if isinstance(self.stmt, Insert) else col.onupdate
            if default is None or not default.is_scalar:
                raise ValueError(f"Prepared statements need scalar defaults ({col.name})")
            defaults[col.key] = default.arg
        bools: tuple[str, ...] = ()
        if dialect.name == "sqlite":
            bools = tuple(c.name for c in getattr(self.stmt, "selected_columns", ()) if isinstance(c.type, Boolean))
            returning = getattr(self.stmt, "_returning", ())
            bools += tuple(c.name for c in returning if isinstance(getattr(c, "type", None), Boolean))
        out = self._cache[key] = _Compiled(compiled.string, defaults, bools)
        return out

    async def execute(self, conn: AsyncConnection, params: dict[str, Any]) -> None:
        """Run a statement that returns no rows (queued on PostgreSQL inside ``Database.write``)."""
        raw = driver_sqlite(conn)
        if raw is not None:
            c = self._compiled(_SQLITE_NAMED, frozenset(params))
            with _wrapped(c.sql, params, sqlite3.Error):
                raw.execute(c.sql, c.params(params))
            return
        driver = _psycopg(conn)
        if driver is not None:
            c = self._compiled(_POSTGRES, frozenset(params))
            queue = _QUEUED.get(id(driver))
            if queue is not None:
                queue.append((c.sql, c.params(params), False))
                return
            with _wrapped(c.sql, params, _psycopg_error()):
                async with driver.cursor() as cur:
                    await cur.execute(c.sql, c.params(params))
            return
        await conn.execute(self.stmt, params)  # type: ignore[call-overload]

    async def execute_many(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per row (rows share one key set), in one driver call."""
        if not rows:
            return
        raw = driver_sqlite(conn)
        if raw is not None:
            c = self._compiled(_SQLITE_NAMED, frozenset(rows[0]))
            with _wrapped(c.sql, rows[0], sqlite3.Error):
                raw.executemany(c.sql, [c.params(r) for r in rows])
            return
        driver = _psycopg(conn)
        if driver is not None:
            c = self._compiled(_POSTGRES, frozenset(rows[0]))
            queue = _QUEUED.get(id(driver))
            if queue is not None:
                queue.append((c.sql, [c.params(r) for r in rows], True))
                return
            with _wrapped(c.sql, rows[0], _psycopg_error()):
                async with driver.cursor() as cur:
                    await cur.executemany(c.sql, [c.params(r) for r in rows])
            return
        await conn.execute(self.stmt, list(rows))  # type: ignore[call-overload]

    async def fetch_one(self, conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict (column name → value), or ``None``."""
        return (await fetch_two(conn, (self, params)))[0]

    async def scalar(self, conn: AsyncConnection, params: dict[str, Any]) -> Any:
        """The first column of the first row, or ``None``."""
        row = await self.fetch_one(conn, params)
        return None if row is None else next(iter(row.values()))


async def fetch_two(conn: AsyncConnection, *queries: tuple[Prepared, dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The first row of each query, in order; on PostgreSQL all of them (and any queued writes before them) in
    one round trip."""
    raw = driver_sqlite(conn)
    if raw is not None:
        out: list[dict[str, Any] | None] = []
        for stmt, params in queries:
            c = stmt._compiled(_SQLITE_NAMED, frozenset(params))
            with _wrapped(c.sql, params, sqlite3.Error):
                out.append(_sqlite_row(raw.execute(c.sql, c.params(params)), c))
        return out
    driver = _psycopg(conn)
    if driver is not None:
        compiled = [(stmt._compiled(_POSTGRES, frozenset(params)), params) for stmt, params in queries]
        queued = _take_queue(driver)
        with _wrapped(compiled[0][0].sql, compiled[0][1], _psycopg_error()):
            if not queued and len(compiled) == 1:
                async with driver.cursor() as cur:
                    await cur.execute(compiled[0][0].sql, compiled[0][0].params(compiled[0][1]))
                    return [_pg_row(cur, await cur.fetchone())]
            async with driver.pipeline():
                await _send(driver, queued)
                cursors = []
                for c, params in compiled:
                    cur = driver.cursor()
                    await cur.execute(c.sql, c.params(params))
                    cursors.append(cur)
                rows = []
                for cur in cursors:
                    rows.append(_pg_row(cur, await cur.fetchone()))
                    await cur.close()
                return rows
    results = []
    for stmt, params in queries:
        found = (await conn.execute(stmt.stmt, params)).mappings().first()  # type: ignore[call-overload]
        results.append(dict(found) if found is not None else None)
    return results


# ------------------------------------------------------------------------------------------- PostgreSQL queue


@asynccontextmanager
async def pipelined_writes(conn: AsyncConnection) -> AsyncIterator[None]:
    """For the body of a PostgreSQL write transaction: queue :class:`Prepared` writes, and on success send what
    is queued together with the ``COMMIT`` in one pipeline. (SQLAlchemy's own commit afterwards finds the
    connection idle and sends nothing.) On an exception the queue is dropped unsent; the caller rolls back."""
    driver = _psycopg(conn)
    if driver is None:
        yield
        return
    key = id(driver)
    _QUEUED[key] = []
    try:
        yield
        queued = _take_queue(driver)
        if queued:  # else SQLAlchemy's COMMIT alone is the same one round trip
            with _wrapped("COMMIT (after pipelined writes)", None, _psycopg_error()):
                async with driver.pipeline():
                    await _send(driver, queued)
                    await driver.commit()
    finally:
        _QUEUED.pop(key, None)


def flush_before_sqlalchemy(engine: AsyncEngine) -> None:
    """Register on a PostgreSQL engine: before SQLAlchemy runs a statement on a connection with queued
    :class:`Prepared` writes, send them (so statements reach the server in program order)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _flush(conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any) -> None:
        driver = conn.connection.driver_connection
        if _QUEUED.get(id(driver)):
            queued = _take_queue(driver)
            with _wrapped("(pipelined writes)", None, _psycopg_error()):
                await_only(_send_pipelined(driver, queued))


def _take_queue(driver: Any) -> list[tuple[str, Any, bool]]:
    queue = _QUEUED.get(id(driver))
    if not queue:
        return []
    items = list(queue)
    queue.clear()
    return items


async def _send(driver: Any, queued: list[tuple[str, Any, bool]]) -> None:
    if not queued:
        return
    async with driver.cursor() as cur:
        for sql, params, many in queued:
            if many:
                await cur.executemany(sql, params)
            else:
                await cur.execute(sql, params)


async def _send_pipelined(driver: Any, queued: list[tuple[str, Any, bool]]) -> None:
    async with driver.pipeline():
        await _send(driver, queued)


# ------------------------------------------------------------------------------------------- helpers


class _wrapped:
    """Re-raise driver errors as SQLAlchemy's wrappers (``IntegrityError`` …), as ``conn.execute`` would."""

    __slots__ = ("base", "params", "sql")

    def __init__(self, sql: str, params: Any, base: type[Exception]) -> None:
        self.sql, self.params, self.base = sql, params, base

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: Any, exc: BaseException | None, _tb: Any) -> None:
        if isinstance(exc, self.base):
            raise DBAPIError.instance(self.sql, self.params, exc, self.base) from exc


_PSYCOPG_ERROR: list[type[Exception]] = []


def _psycopg_error() -> type[Exception]:
    if not _PSYCOPG_ERROR:  # imported on first use: a SQLite-only process never loads psycopg
        import psycopg

        _PSYCOPG_ERROR.append(psycopg.Error)
    return _PSYCOPG_ERROR[0]


def _sqlite_row(cur: sqlite3.Cursor, c: _Compiled) -> dict[str, Any] | None:
    row = cur.fetchone()
    names = [d[0] for d in cur.description]
    cur.close()
    if row is None:
        return None
    out = dict(zip(names, row, strict=True))
    for name in c.bools:
        if out.get(name) is not None:
            out[name] = bool(out[name])
    return out


def _pg_row(cur: Any, row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return dict(zip([d.name for d in cur.description], row, strict=True))


def _psycopg(conn: AsyncConnection) -> Any:
    """The psycopg ``AsyncConnection`` behind ``conn`` on PostgreSQL, else ``None``."""
    if conn.dialect.name != "postgresql":
        return None
    return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
