"""Hot-path statements sent straight to the database driver, compiled once.

SQLAlchemy Core still defines every statement (one schema, one place for dialect differences), but executing a
Core statement costs about 50 µs of Python per call on top of the driver (execution context, greenlet hop,
result wrapping) — with fifteen statements, most of the CPU a payment cost. :class:`Prepared` compiles a
statement once per dialect and per set of parameter names, then runs the SQL text on the driver connection the
:class:`~sqlalchemy.ext.asyncio.AsyncConnection` holds, in the same transaction:

* SQLite (the inline writer connection of :mod:`paygate.db.sqlite`): ``sqlite3`` directly, on the event loop,
  with named parameters; ``Boolean`` result columns become ``bool`` as SQLAlchemy would return them.
* PostgreSQL (asyncpg): the ``$n`` text on the asyncpg connection, whose statement cache prepares each hot
  statement server-side once per connection (parse and plan once). If SQLAlchemy has not yet begun the
  connection's transaction, it is begun first (its asyncpg adapter begins lazily). Inside
  :meth:`Database.write <paygate.db.engine.Database.write>`, statements that return nothing are queued and sent
  as one statement with the next row-returning one, or at the commit (:mod:`paygate.db.pgbatch`).
* Anything else (the aiosqlite read connections): ordinary SQLAlchemy execution of the same statement.

Contract: parameters are a dict per row whose keys are the statement's bind names (``bindparam("_id")`` →
``"_id"``) and, for an ``INSERT``/``UPDATE`` built without ``.values()``, column names: as with
``conn.execute(stmt, params)``, those keys decide the columns written. Scalar column defaults fill missing
``INSERT`` columns. Values must already have the column's Python type (asyncpg does not coerce: ``str`` for
text, ``int`` for integers, ``bytes`` for binary). Driver errors are raised as SQLAlchemy's wrappers
(``IntegrityError`` …) as ``conn.execute`` would; an error of a queued PostgreSQL write surfaces where the queue
is sent (the next read or the commit), still inside the transaction. Not applied on the direct path:
SQLAlchemy execution events and ``echo`` logging, callable defaults (refused at compile time) and type
processors other than ``Boolean``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Boolean, Table, Text, bindparam, cast, literal_column, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.util import find_tables

from paygate.db import pgbatch
from paygate.db.sqlite import driver_sqlite

__all__ = ["Prepared", "fetch_two", "guarded_update"]

_SQLITE_NAMED: Dialect = sqlite.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
_POSTGRES: Dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]


class _Compiled:
    __slots__ = ("bools", "combinable", "defaults", "order", "sql")

    def __init__(self, sql: str, defaults: dict[str, Any], bools: tuple[str, ...], order: tuple[str, ...]) -> None:
        self.sql = sql
        self.defaults = defaults  # literal values in the statement, scalar defaults of columns not named
        self.bools = bools  # result columns to turn into bool (SQLite stores 0/1)
        self.order = order  # PostgreSQL: the bind names of $1, $2, … in order
        self.combinable = pgbatch.combinable(sql)

    def params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **params} if self.defaults else params

    def args(self, params: dict[str, Any]) -> list[Any]:
        """Positional arguments for the ``$n`` placeholders."""
        merged = self.params(params)
        return [merged[name] for name in self.order]


class Prepared:
    """One Core statement, compiled on first use per dialect and parameter-name set (a bounded set: the
    call sites' key sets). See the module docstring."""

    __slots__ = ("_cache", "serial", "stmt", "table", "touches", "updates")

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._cache: dict[tuple[str, frozenset[str]], _Compiled] = {}
        dml = isinstance(stmt, (Insert, Update, Delete))
        self.table: str = stmt.table.name if dml else ""  # type: ignore[attr-defined]
        self.updates = isinstance(stmt, (Update, Delete))
        self.serial = dml and stmt.table.autoincrement_column is not None  # type: ignore[attr-defined]
        self.touches = frozenset(t.name for t in find_tables(stmt, include_crud=True))

    def _compiled(self, dialect: Dialect, keys: frozenset[str]) -> _Compiled:
        key = (dialect.name, keys)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        # An INSERT without its own RETURNING compiles as for executemany: no implicit "RETURNING id" of an
        # autoincrement key that nobody reads (and a plain INSERT can be batched as one multi-row statement).
        implicit = isinstance(self.stmt, Insert) and not self.stmt._returning
        compiled: Any = self.stmt.compile(dialect=dialect, column_keys=sorted(keys), for_executemany=implicit)
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
        order = tuple(compiled.positiontup or ()) if dialect.name == "postgresql" else ()
        out = self._cache[key] = _Compiled(compiled.string, defaults, bools, order)
        return out

    def _write(self, c: _Compiled, args: list[Any], **extra: Any) -> pgbatch.Write:
        return pgbatch.Write(c.sql, args, self.table, self.updates, self.serial, c.combinable, **extra)

    async def execute(self, conn: AsyncConnection, params: dict[str, Any]) -> None:
        """Run a statement that returns no rows (queued on PostgreSQL inside ``Database.write``)."""
        raw = driver_sqlite(conn)
        if raw is not None:
            c = self._compiled(_SQLITE_NAMED, frozenset(params))
            with _wrapped(c.sql, params, sqlite3.Error):
                raw.execute(c.sql, c.params(params))
            return
        adapter = pgbatch.adapter_of(conn)
        if adapter is not None:
            c = self._compiled(_POSTGRES, frozenset(params))
            args = c.args(params)
            queue = pgbatch.queue_of(adapter)
            if queue is not None:
                queue.append(self._write(c, args))
                return
            await pgbatch.run(adapter, c.sql, args, lambda db: db.execute(c.sql, *args))
            return
        await conn.execute(self.stmt, params)  # type: ignore[call-overload]

    def queue_returning(
        self,
        conn: AsyncConnection,
        params: dict[str, Any],
        on_row: Callable[[dict[str, Any] | None], None],
        *,
        taken: Callable[[], Exception] | None = None,
    ) -> bool:
        """PostgreSQL, inside ``Database.write``: queue this row-returning write (an ``INSERT … RETURNING``) like
        a write that returns nothing; ``on_row`` gets its first row (or ``None``) when the queue is sent — at the
        latest at the commit, or earlier with :func:`paygate.db.pgbatch.flush` — and a unique violation on its
        table raises ``taken()`` there instead of ``IntegrityError``. Returns ``False`` (nothing queued)
        anywhere else: the caller runs the statement itself."""
        _adapter, queue = pgbatch.queue_on(conn)
        if queue is None:
            return False
        c = self._compiled(_POSTGRES, frozenset(params))

        def deliver(record: Any) -> None:
            on_row(None if record is None else dict(record.items()))

        queue.append(self._write(c, c.args(params), on_row=deliver, taken=taken))
        return True

    def queue_guarded(self, conn: AsyncConnection, params: dict[str, Any]) -> None:
        """PostgreSQL, inside ``Database.write``: queue this statement — an ``UPDATE … RETURNING`` whose ``WHERE``
        names the row and the version it must still be — as a guarded write: when it does not change exactly
        one row, the statement it is sent in fails and :class:`paygate.db.pgbatch.RowChanged` is raised
        (nothing of the transaction is written). ``RuntimeError`` anywhere else: an optimistic transaction
        exists on PostgreSQL only."""
        _adapter, queue = pgbatch.queue_on(conn)
        if queue is None:
            raise RuntimeError("guarded writes need a PostgreSQL Database.write() transaction")
        c = self._compiled(_POSTGRES, frozenset(params))
        queue.append(self._write(c, c.args(params), guard=True))

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
        adapter = pgbatch.adapter_of(conn)
        if adapter is not None:
            c = self._compiled(_POSTGRES, frozenset(rows[0]))
            many = [c.args(r) for r in rows]
            queue = pgbatch.queue_of(adapter)
            if queue is not None:
                one = pgbatch.multi_row(c.sql, self.table, len(c.order), many, serial=self.serial)
                queue.extend([one] if one else [self._write(c, a) for a in many])
                return
            await pgbatch.run(adapter, c.sql, many, lambda db: db.executemany(c.sql, many))
            return
        await conn.execute(self.stmt, list(rows))  # type: ignore[call-overload]

    async def fetch_one(self, conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict (column name → value), or ``None``."""
        return (await fetch_two(conn, (self, params)))[0]

    async def fetch_unbound(self, conn: AsyncConnection, params: dict[str, Any]) -> dict[str, Any] | None:
        """The first row, read by a statement of its own outside the transaction (PostgreSQL, inside
        ``Database.write`` before it sent or queued anything): one round trip, no ``BEGIN``, no lock, its own
        snapshot — the read of an optimistic transaction, whose writes must be guarded by the versions it read
        (:meth:`queue_guarded`). The transaction itself still begins with its first write. ``RuntimeError``
        when something was sent or queued already; anywhere else (SQLite) the same as :meth:`fetch_one`."""
        adapter, queue = pgbatch.queue_on(conn)
        if queue is None:
            return await self.fetch_one(conn, params)
        if queue or adapter._transaction is not None or conn.in_transaction():
            raise RuntimeError("an unbound read must come before anything else in its write transaction")
        c = self._compiled(_POSTGRES, frozenset(params))
        args = c.args(params)
        record = await pgbatch.run(adapter, c.sql, args, lambda db: db.fetchrow(c.sql, *args), begin=False)
        return None if record is None else dict(record.items())

    async def scalar(self, conn: AsyncConnection, params: dict[str, Any]) -> Any:
        """The first column of the first row, or ``None``."""
        row = await self.fetch_one(conn, params)
        return None if row is None else next(iter(row.values()))


async def fetch_two(conn: AsyncConnection, *queries: tuple[Prepared, dict[str, Any]]) -> list[dict[str, Any] | None]:
    """The first row of each query, in order."""
    raw = driver_sqlite(conn)
    if raw is not None:
        out: list[dict[str, Any] | None] = []
        for stmt, params in queries:
            c = stmt._compiled(_SQLITE_NAMED, frozenset(params))
            with _wrapped(c.sql, params, sqlite3.Error):
                out.append(_sqlite_row(raw.execute(c.sql, c.params(params)), c))
        return out
    adapter = pgbatch.adapter_of(conn)
    if adapter is not None:
        rows: list[dict[str, Any] | None] = []
        for stmt, params in queries:
            c = stmt._compiled(_POSTGRES, frozenset(params))
            record = await pgbatch.send_with(adapter, c.sql, c.args(params), stmt.touches)
            rows.append(None if record is None else dict(record.items()))
        return rows
    results = []
    for stmt, params in queries:
        found = (await conn.execute(stmt.stmt, params)).mappings().first()  # type: ignore[call-overload]
        results.append(dict(found) if found is not None else None)
    return results


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


def guarded_update(table: Table) -> Prepared:
    """``UPDATE table … WHERE id = :_id AND xmin::text = :_version RETURNING 1`` (PostgreSQL), for
    :meth:`Prepared.queue_guarded`: a write that applies only while the row is still that version."""
    version = cast(literal_column("xmin"), Text)
    return Prepared(
        update(table)
        .where(table.c.id == bindparam("_id"), version == bindparam("_version"))
        .returning(literal_column("1"))
    )
