"""PostgreSQL: the writes of a transaction queued and sent as one statement, so a payment costs a few round trips.

asyncpg sends one statement per round trip and cannot pipeline different statements. Inside
:meth:`Database.write <paygate.db.engine.Database.write>` (which wraps its body in :func:`queued_writes`), a
:class:`~paygate.db.prepared.Prepared` statement that returns nothing is **queued** instead of sent. The queue
goes out as one statement built from data-modifying common table expressions::

    WITH w0 AS (INSERT INTO payment_intents …), w1 AS (INSERT INTO events …) INSERT INTO idempotency_keys …
        ON CONFLICT DO NOTHING RETURNING id

either together with the next row-returning :class:`Prepared` statement (as its main statement, as above), or
before any statement SQLAlchemy runs on the connection, or just before ``COMMIT``.

**A transaction that is one statement needs no ``BEGIN``.** When the body of a write transaction sent nothing
(every statement was queued) and its queue is one statement, that statement is sent alone, outside ``BEGIN`` …
``COMMIT``: PostgreSQL runs it in an implicit transaction of its own, which commits when it succeeds and leaves
nothing when it fails — the same atomicity and durability as the explicit transaction, in one round trip instead
of three. (Nothing was read in the transaction, so its isolation has nothing to protect.) Such statements of
the same text that are ready in the same event-loop turn go together, one round trip and one commit for all
(:mod:`paygate.db.groupcommit`).

A queued write may return a row (:meth:`Prepared.queue_returning
<paygate.db.prepared.Prepared.queue_returning>`: an ``INSERT … RETURNING`` whose row the caller needs
only after the commit, such as an idempotency claim's id); it is then the main statement of its batch and its
row is handed to a callback when the batch is sent. A queued insert may also name the exception that a unique
violation on its table means (the key was taken): that exception is raised instead of ``IntegrityError``
wherever the queue is sent.

Why this keeps the transaction's meaning. The parts of one statement share one snapshot and PostgreSQL runs them
in no defined order, so they must not depend on each other's effects. A batch therefore never holds:

* two writes to the same table when either is an ``UPDATE`` or ``DELETE`` (the later one would not see the
  earlier), or two inserts into a table with an autoincrement key (their ids would not follow program order);
  such a queue is sent as several statements, in order;
* a row-returning statement that reads or writes a table the queued writes wrote (the queue is sent first);
* statements whose text could not be renumbered safely (quotes, their own ``WITH``).

Foreign keys between parts hold: PostgreSQL checks non-deferrable foreign keys at the end of the statement.
Rows of one ``execute_many`` are one multi-row ``INSERT``, so their serial ids keep the caller's order.

Errors of queued writes (a unique violation, say) surface where the queue is sent — at the next read or at the
commit — still inside the transaction, which then rolls back; the caller sees SQLAlchemy's wrapper
(``IntegrityError`` …) as ``conn.execute`` would raise it.

**Guarded writes** (:meth:`Prepared.queue_guarded <paygate.db.prepared.Prepared.queue_guarded>`) make an
optimistic transaction: an ``UPDATE … WHERE id = … AND xmin::text = <version> RETURNING 1`` that must change
exactly its one row, i.e. the row must still be the version the caller read or wrote (``xmin``, the id of the
transaction that wrote a row version, changes with every update of the row). A statement holding guarded
writes ends in ``SELECT 1 / (SELECT count(*) FROM wI) / (SELECT count(*) FROM wJ) …`` (guards in queue order):
when a guarded row was changed, that division fails, PostgreSQL aborts the whole statement (and its
transaction), and :class:`RowChanged` is raised, so nothing of the transaction is written and the caller can
take the locked path instead. A guarded ``UPDATE`` that meets a row locked by another transaction waits for
it, then re-checks its condition on the row's newest version (READ COMMITTED), so a change committed meanwhile
is seen. A deadlock involving the statement is reported as :class:`RowChanged` too (it was rolled back whole).
A statement may hold one ``RETURNING`` write besides its guards (an optimistic transaction's idempotency claim):
it then ends in ``SELECT wR.* FROM wR WHERE 1 / (…) / (…) = 1``, which returns that write's row or fails as
above — the check is a condition on no column of ``wR``, so PostgreSQL evaluates it once, before the row (a
``RETURNING`` write is an ``INSERT`` without ``ON CONFLICT``: it has its one row or fails).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_only

__all__ = [
    "Grouper",
    "RowChanged",
    "Write",
    "adapter_of",
    "combine",
    "flush",
    "flush_before_sqlalchemy",
    "queue_of",
    "queue_on",
    "queued_writes",
    "run",
    "send_statement",
    "send_with",
]

# Writes queued per connection while a Database.write() transaction is open on it: id(adapter) -> writes.
_QUEUES: dict[int, list[Write]] = {}
_PLACEHOLDER = re.compile(r"\$(\d+)")
_MULTI_ROW = re.compile(r"^(INSERT INTO .+? VALUES )(\(.*\))$", re.S)
_UNIQUE_VIOLATION = "23505"
_GUARD_FAILED = frozenset({"22012", "40P01"})  # division_by_zero (see module docstring), deadlock_detected
_MAX_ARGS = 30_000  # PostgreSQL allows 32,767 parameters per statement
# Combined texts by their parts (a transaction shape repeats: the hot path's are a handful). Bounded.
_COMBINED: dict[tuple[tuple[str, int, bool, bool], ...], str] = {}
_COMBINED_MAX = 512


@dataclass(frozen=True, slots=True)
class Write:
    """One queued write: its ``$n`` text and arguments, the table it writes, whether it changes rows that exist
    (``UPDATE``/``DELETE``) rather than only inserting, and whether the table numbers its rows (an
    autoincrement key, whose order two inserts in one statement would not keep)."""

    sql: str
    args: list[Any]
    table: str
    updates: bool
    serial: bool = False
    combinable: bool = True  # see combinable()
    on_row: Callable[[Any], None] | None = None  # a RETURNING write: gets its row (asyncpg Record or None)
    taken: Callable[[], Exception] | None = None  # raised for a unique violation on ``table``
    guard: bool = False  # an UPDATE … RETURNING 1 that must change exactly one row (module docstring)


class RowChanged(Exception):
    """A guarded write's row is no longer the version it was given (or the statement was chosen as a deadlock
    victim): the statement and its transaction were rolled back, nothing of it was written."""


def combinable(sql: str) -> bool:
    """Whether ``sql`` can be a part of a combined statement: no quoted text (whose ``$n`` must not be
    renumbered) and no ``WITH`` of its own."""
    return "'" not in sql and not sql.lstrip().upper().startswith("WITH")


def adapter_of(conn: AsyncConnection) -> Any:
    """SQLAlchemy's asyncpg adapter connection behind ``conn`` on PostgreSQL, else ``None``."""
    if conn.dialect.name != "postgresql":
        return None
    return conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]


def queue_of(adapter: Any) -> list[Write] | None:
    """The open write queue of ``adapter`` (inside :func:`queued_writes`), else ``None``."""
    return _QUEUES.get(id(adapter))


def queue_on(conn: AsyncConnection) -> tuple[Any, list[Write] | None]:
    """``conn``'s asyncpg adapter (``None`` off PostgreSQL) and its open write queue (``None`` outside
    :func:`queued_writes`)."""
    adapter = adapter_of(conn)
    return adapter, None if adapter is None else _QUEUES.get(id(adapter))


def multi_row(sql: str, table: str, width: int, rows: list[list[Any]], *, serial: bool = False) -> Write | None:
    """``rows`` of a single-row ``INSERT … VALUES ($1, …, $width)`` as one multi-row ``INSERT`` (``None`` when
    the statement is not of that shape)."""
    found = _MULTI_ROW.match(sql)
    if found is None or "RETURNING" in sql or "ON CONFLICT" in sql or width * len(rows) > _MAX_ARGS:
        return None
    head, values = found.groups()
    tuples = [_renumber(values, i * width) for i in range(len(rows))]
    return Write(head + ", ".join(tuples), [a for row in rows for a in row], table, False, serial, combinable(sql))


async def run(
    adapter: Any,
    sql: str,
    args: Any,
    call: Callable[[Any], Awaitable[Any]],
    *,
    begin: bool = True,
    parts: list[Write] | None = None,
) -> Any:
    """Run ``call(asyncpg connection)`` inside the connection's SQLAlchemy transaction (begun here if SQLAlchemy
    has not begun it yet: its asyncpg adapter begins lazily; with ``begin=False`` a connection outside a
    transaction runs it as a statement of its own); driver errors become SQLAlchemy's wrappers, or the ``taken``
    exception of the part of ``parts`` whose table a unique violation names."""
    error: type[Exception] = adapter.dbapi.Error
    try:
        if begin and adapter._transaction is None and not adapter.autocommit:
            await adapter._start_transaction()  # raises the adapter's DBAPI-level errors itself
        return await call(adapter._connection)
    except error as exc:
        raise DBAPIError.instance(sql, args, exc, error) from exc
    except Exception as exc:  # asyncpg's own, translated as SQLAlchemy's adapter translates them
        if parts and getattr(exc, "sqlstate", None) in _GUARD_FAILED and any(part.guard for part in parts):
            raise RowChanged(str(exc)) from exc
        if parts and getattr(exc, "sqlstate", None) == _UNIQUE_VIOLATION:
            for part in parts:
                if part.taken is not None and part.table == getattr(exc, "table_name", None):
                    raise part.taken() from exc
        try:
            adapter._handle_exception(exc)
        except error as translated:
            raise DBAPIError.instance(sql, args, translated, error) from exc
        raise


async def send_with(adapter: Any, sql: str, args: list[Any], touches: frozenset[str]) -> Any:
    """Run the row-returning statement ``sql`` and return its first row (an asyncpg ``Record`` or ``None``),
    sending the queued writes in the same statement when that keeps their meaning (module docstring), else
    before it."""
    queue = _QUEUES.get(id(adapter))
    if queue:
        batch = list(queue)
        queue.clear()
        returning = any(w.on_row is not None or w.guard for w in batch)
        if not returning and _one_batch(batch) and not touches & {w.table for w in batch} and combinable(sql):
            parts = [*batch, Write(sql, args, "", False)]
            sql, args = combine(parts)
            return await run(adapter, sql, args, lambda db: db.fetchrow(sql, *args), parts=parts)
        await _send(adapter, batch)
    return await run(adapter, sql, args, lambda db: db.fetchrow(sql, *args))


class Grouper(Protocol):
    """Sends a transaction that is one statement, maybe together with others (:mod:`paygate.db.groupcommit`)."""

    async def send(self, adapter: Any, group: list[Write]) -> None: ...


@asynccontextmanager
async def queued_writes(conn: AsyncConnection, grouper: Grouper | None = None) -> AsyncIterator[None]:
    """For the body of a PostgreSQL write transaction: queue :class:`~paygate.db.prepared.Prepared` writes; on
    success send what is still queued (before the caller commits). On an exception the queue is dropped unsent;
    the caller rolls back. A transaction that ends up one statement is handed to ``grouper`` when given."""
    adapter = adapter_of(conn)
    if adapter is None:
        yield
        return
    key = id(adapter)
    _QUEUES[key] = []
    try:
        yield
        queue = _QUEUES[key]
        if queue:
            batch = list(queue)
            queue.clear()
            # Nothing sent yet in this transaction and one statement to send: no BEGIN/COMMIT (module docstring).
            await _send(adapter, batch, alone=adapter._transaction is None, grouper=grouper)
    finally:
        _QUEUES.pop(key, None)


async def flush(conn: AsyncConnection) -> None:
    """Send the writes queued on ``conn`` now (the callbacks of queued ``RETURNING`` writes have run on
    return). Nothing to do outside a PostgreSQL write transaction."""
    adapter, queue = queue_on(conn)
    if queue:
        batch = list(queue)
        queue.clear()
        await _send(adapter, batch)


def flush_before_sqlalchemy(engine: AsyncEngine) -> None:
    """Register on a PostgreSQL engine: before SQLAlchemy runs a statement on a connection with queued writes,
    send them (statements reach the server in program order)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _flush(conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any) -> None:
        adapter = conn.connection.dbapi_connection
        queue = _QUEUES.get(id(adapter))
        if queue:
            batch = list(queue)
            queue.clear()
            await_only(_send(adapter, batch))


# ------------------------------------------------------------------------------------------- batching


async def _send(adapter: Any, batch: list[Write], *, alone: bool = False, grouper: Grouper | None = None) -> None:
    """Send ``batch`` as few statements as keep its meaning; ``alone``: when that is one statement, outside any
    transaction (the caller has sent nothing in its transaction and ends it right after), through ``grouper``
    when given."""
    groups = _groups(batch)
    begin = not (alone and len(groups) == 1)
    if not begin and grouper is not None:
        await grouper.send(adapter, _returning_last(groups[0]))
        return
    for group in groups:
        group = _returning_last(group)
        sql, args = combine(group)
        await send_statement(adapter, group, sql, args, begin=begin)


async def send_statement(adapter: Any, group: list[Write], sql: str, args: list[Any], *, begin: bool) -> None:
    """Send ``group`` as its one statement ``sql`` (:func:`combine`); its ``RETURNING`` part, if any, gets the
    row. ``begin``: as for :func:`run`."""
    on_row = group[-1].on_row
    if on_row is None:
        await run(adapter, sql, args, _executor(sql, args), begin=begin, parts=group)
    else:
        on_row(await run(adapter, sql, args, _fetcher(sql, args), begin=begin, parts=group))


def _executor(sql: str, args: list[Any]) -> Callable[[Any], Awaitable[Any]]:
    async def execute(db: Any) -> Any:
        return await db.execute(sql, *args)

    return execute


def _fetcher(sql: str, args: list[Any]) -> Callable[[Any], Awaitable[Any]]:
    async def fetch(db: Any) -> Any:
        return await db.fetchrow(sql, *args)

    return fetch


def _returning_last(group: list[Write]) -> list[Write]:
    """The group with its ``RETURNING`` write (at most one, see _groups) last: the main statement, whose rows
    the combined statement returns. Parts of a group do not depend on each other, so their order is free."""
    for i, w in enumerate(group[:-1]):
        if w.on_row is not None:
            return [*group[:i], *group[i + 1 :], w]
    return group


def _groups(batch: list[Write]) -> list[list[Write]]:
    """Split ``batch``, in order, into runs that can each be one statement."""
    groups: list[list[Write]] = []
    current: list[Write] = []
    written: dict[str, bool] = {}  # table -> updated in the current run
    args = 0
    returning = False  # the current run holds a RETURNING write (a statement has one main statement)
    for w in batch:
        clash = w.table in written and (w.updates or w.serial or written[w.table])
        clash = clash or (returning and w.on_row is not None)  # one main statement: one RETURNING write
        if current and (clash or not w.combinable or not current[-1].combinable or args + len(w.args) > _MAX_ARGS):
            groups.append(current)
            current, written, args, returning = [], {}, 0, False
        current.append(w)
        returning = returning or w.on_row is not None
        written[w.table] = written.get(w.table, False) or w.updates
        args += len(w.args)
    if current:
        groups.append(current)
    return groups


def _one_batch(batch: list[Write]) -> bool:
    return all(w.combinable for w in batch) and len(_groups(batch)) == 1


def combine(parts: list[Write]) -> tuple[str, list[Any]]:
    """One statement: every part but the last as ``wN AS (…)``, the last as the main statement; with guarded
    parts, every part as ``wN`` and the guards' check as the main statement, or as the condition on the row of
    the last part when that is a ``RETURNING`` write (module docstring)."""
    guards = [i for i, part in enumerate(parts) if part.guard]
    if len(parts) == 1 and not guards:
        return parts[0].sql, parts[0].args
    args: list[Any] = []
    for part in parts:
        args.extend(part.args)
    key = tuple((part.sql, len(part.args), part.guard, part.on_row is not None) for part in parts)
    sql = _COMBINED.get(key)
    if sql is None:
        texts: list[str] = []
        offset = 0
        for part in parts:
            texts.append(_renumber(part.sql, offset))
            offset += len(part.args)
        if guards:
            # Left to right: the first guard's row is locked (and checked) before the next one's is touched.
            check = " / ".join(f"(SELECT count(*) FROM w{i})" for i in guards)
            ctes = ", ".join(f"w{i} AS ({text})" for i, text in enumerate(texts))
            last = len(parts) - 1
            if parts[last].on_row is not None:
                sql = f"WITH {ctes} SELECT w{last}.* FROM w{last} WHERE 1 / {check} = 1"
            else:
                sql = f"WITH {ctes} SELECT 1 / {check}"
        else:
            ctes = ", ".join(f"w{i} AS ({text})" for i, text in enumerate(texts[:-1]))
            sql = f"WITH {ctes} {texts[-1]}"
        if len(_COMBINED) >= _COMBINED_MAX:
            _COMBINED.clear()
        _COMBINED[key] = sql
    return sql, args


def _renumber(sql: str, offset: int) -> str:
    if not offset:
        return sql
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + offset}", sql)
