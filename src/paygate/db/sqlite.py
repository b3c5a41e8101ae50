"""The SQLite write path: one writer connection per process, statements run on the event loop, and concurrent
write transactions committed together (group commit).

Why: SQLite has one writer at a time. With a pool of writer connections, concurrent requests queued inside
SQLite's busy handler, which sleeps and polls (1 ms, 2 ms, 5 ms … 100 ms) and so wasted most of the time the
lock was free; and every statement hopped to a driver thread and back, yielding the event loop while the write
lock was held. Here writers queue in the process (:class:`_Gate`), a transaction body runs without yielding the
loop for its statements (an uncontended SQLite statement inside an open write transaction takes microseconds and
waits for nothing), the commit's fsync runs in a helper thread, and taking the file lock while another process
(``paygate worker``) holds it is retried every couple of milliseconds without blocking the loop.

Contract of :meth:`SqliteWriter.transaction` (what :meth:`paygate.db.engine.Database.write` gives callers):

* **Atomic**: each transaction runs inside a ``SAVEPOINT`` of the group's ``BEGIN IMMEDIATE`` transaction; an
  exception rolls back to that savepoint only, so other transactions of the group are unaffected.
* **Durable before it returns**: leaving the ``async with`` block waits until the group that contains the
  transaction has committed (with ``synchronous=FULL``: fsynced). A response built after ``Database.write``
  returned therefore only ever describes durable data. If the group's commit fails, every member's block raises
  :class:`GroupCommitFailed`, so none of them answers as if it had committed.
* **Serializable**: transactions run one at a time on one connection (roughly in arrival order); a transaction
  sees everything committed or grouped before it. Readers (:meth:`Database.read`, separate connections) see a
  group only once it is committed. A transaction that fails after earlier members of its group ran (so may
  have decided on their uncommitted data) raises its error only once the group is durable, or raises
  :class:`GroupCommitFailed` if it is not.
* **Grouping**: the group opened by a transaction also takes every transaction already waiting at that moment;
  a flusher task queued behind them commits the group. Under load a group is every writer that queued during
  the previous commit, so one fsync serves many requests; with a single writer a group is one transaction.
* A transaction must not open another write transaction (it would wait for itself): that raises
  ``RuntimeError`` instead of deadlocking.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["BUSY_TIMEOUT_MS", "GroupCommitFailed", "SqliteWriter", "apply_pragmas", "driver_sqlite"]

BUSY_TIMEOUT_MS = 30_000  # how long to wait for another process's write lock before "database is locked"
BUSY_POLL_SECONDS = 0.002  # longest pause between tries while another process holds the write lock
_SAVEPOINT, _RELEASE, _ROLLBACK_TO = "SAVEPOINT paygate_txn", "RELEASE paygate_txn", "ROLLBACK TO paygate_txn"


class GroupCommitFailed(RuntimeError):
    """The commit of a group of write transactions failed; this transaction's changes were not committed."""


def apply_pragmas(conn: sqlite3.Connection, synchronous: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# ---------------------------------------------------------------------------------------------------------------
# A driver-level connection with aiosqlite's asynchronous interface that executes on the calling thread, so that
# SQLAlchemy's aiosqlite dialect can use it (``async_creator``). Only BEGIN (which may wait for another process)
# and COMMIT (fsync) are sent to a helper thread.


class _InlineCursor:
    __slots__ = ("_conn", "_cur")

    def __init__(self, conn: _InlineConnection) -> None:
        self._conn = conn
        self._cur = conn._raw.cursor()

    async def __aenter__(self) -> _InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cur.close()

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cur.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cur.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cur.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _InlineCursor:
        if parameters is None:
            self._cur.execute(sql)
        else:
            self._cur.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]]) -> _InlineCursor:
        self._cur.executemany(sql, seq_of_parameters)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    async def fetchone(self) -> Any:
        return self._cur.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cur.fetchmany(self._cur.arraysize if size is None else size)

    async def close(self) -> None:
        self._cur.close()


class _InlineConnection:
    """What SQLAlchemy's aiosqlite adapter expects of an ``aiosqlite.Connection`` (the attributes it touches:
    ``_connection``, ``isolation_level``, ``cursor``, ``commit``, ``rollback``, ``close``, ``create_function``,
    ``stop``)."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._executor = executor

    @property
    def _raw(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._raw.isolation_level

    def cursor(self) -> _InlineCursor:
        return _InlineCursor(self)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE`` on the loop (busy_timeout is 0 on this connection, so it never blocks). While
        another process holds the write lock, retry every ``BUSY_POLL_SECONDS`` or so, yielding the loop, for up
        to ``BUSY_TIMEOUT_MS``. (SQLite's own busy handler sleeps 1, 2, 5 … up to 100 ms between tries, so a
        writer could sleep for tens of milliseconds after a lock held for one: that was the p99 of a payment
        with ``paygate worker`` running beside the API.)"""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        delay = BUSY_POLL_SECONDS / 4
        while True:
            try:
                self._raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if loop.time() >= deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, BUSY_POLL_SECONDS)

    async def commit(self) -> None:
        await self._in_thread(self._raw.commit)

    async def rollback(self) -> None:
        self._raw.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._raw.create_function(*args, **kw)

    async def close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()
        self._executor.shutdown(wait=False)


def driver_sqlite(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The ``sqlite3`` connection behind ``conn`` when it is the inline writer connection (statements may run on
    it directly, inside the current transaction), else ``None``."""
    if conn.dialect.name != "sqlite":
        return None
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    return driver._connection if isinstance(driver, _InlineConnection) else None


# ---------------------------------------------------------------------------------------------------------------


class _Gate:
    """Mutual exclusion for the writer that costs no extra loop turn per transaction.

    ``asyncio.Lock`` hands over to one waiter at a time, and each hand-over waits for a full turn of a busy event
    loop, so ten queued transactions took ten turns. Here ``release`` wakes every waiter; woken tasks run in the
    same turn, and since a transaction body normally runs without yielding, each finds the gate open, goes
    through and releases it for the next. A task that finds it closed again (a body yielded) waits again. A
    cancelled waiter holds nothing: ownership is taken only by a task that runs and finds the gate open."""

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        while self._held:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut
        self._held = True

    def release(self) -> None:
        self._held = False
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    @property
    def idle(self) -> bool:
        return not self._held and not self._waiters


class _Group:
    __slots__ = ("done", "members")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        self.members = 0  # transactions whose savepoint was released into this group

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(GroupCommitFailed(f"write transaction not committed: {type(exc).__name__}"))
            self.done.exception()  # mark retrieved: members that were cancelled meanwhile never await it


class SqliteWriter:
    """The process's SQLite writer; see the module docstring for the contract of :meth:`transaction`."""

    def __init__(self, url: str, *, synchronous: str = "FULL", echo: bool = False) -> None:
        database = make_url(url).database
        if not database or database == ":memory:":
            raise ValueError("the SQLite writer needs a database file (readers use separate connections)")
        self._path = database
        self._synchronous = synchronous
        self.engine: AsyncEngine = create_async_engine(
            url, async_creator=self._create, pool_size=1, max_overflow=0, echo=echo
        )

        self._conn: AsyncConnection | None = None
        self._driver: _InlineConnection | None = None
        self._gate: _Gate | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: asyncio.Task[Any] | None = None
        self._group: _Group | None = None
        self._flushers: set[asyncio.Task[None]] = set()

    async def _create(self) -> _InlineConnection:
        raw = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        apply_pragmas(raw, self._synchronous, busy_timeout_ms=0)
        return _InlineConnection(raw, ThreadPoolExecutor(max_workers=1, thread_name_prefix="paygate-sqlite-writer"))

    def _gate_for_loop(self) -> _Gate:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._loop is not loop:
            if self._gate is not None and not self._gate.idle:
                raise RuntimeError("the SQLite writer is in use by another event loop")
            self._gate, self._loop = _Gate(), loop
        return self._gate

    async def _connection(self) -> tuple[AsyncConnection, _InlineConnection]:
        if self._conn is None or self._conn.closed or self._conn.invalidated or self._driver is None:
            self._conn = await self.engine.connect()
            driver = (await self._conn.get_raw_connection()).driver_connection
            assert isinstance(driver, _InlineConnection)
            self._driver = driver
        return self._conn, self._driver

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("a write transaction cannot open another write transaction (it would wait for itself)")
        gate = self._gate_for_loop()
        await gate.acquire()
        self._holder = task
        try:
            conn, driver = await self._connection()
            raw = driver._raw
            group = self._group
            if group is None:
                try:
                    await driver.begin_immediate()
                    await conn.begin()  # SQLAlchemy's bookkeeping only: the pysqlite dialect sends nothing
                except BaseException:
                    await self._discard(conn)
                    raise
                group = self._group = _Group(asyncio.get_running_loop())
                self._schedule_flush(group)  # queued behind everyone already waiting: they join this group
            # The member's savepoint goes straight to the driver: SQLAlchemy only sees the group's transaction.
            raw.execute(_SAVEPOINT)
            saw_uncommitted = group.members > 0  # earlier members' changes are visible to this one
            try:
                yield conn
                raw.execute(_RELEASE)
            except BaseException as exc:
                await self._roll_back_member(conn, raw, group, exc)
                failed: BaseException | None = exc
            else:
                group.members += 1
                failed = None
        finally:
            self._holder = None
            gate.release()
        if failed is not None:
            # An error decided on data of earlier members is only reported once that data is durable: if their
            # commit fails, this member's answer must not describe a state that never existed.
            if saw_uncommitted and isinstance(failed, Exception):
                await asyncio.shield(group.done)
            raise failed
        await asyncio.shield(group.done)  # shielded: a cancelled member must not cancel its group's future

    async def _roll_back_member(
        self, conn: AsyncConnection, raw: sqlite3.Connection, group: _Group, exc: BaseException
    ) -> None:
        """Undo one member. If SQLite already rolled back the whole transaction (it does on some I/O errors),
        the group's earlier members are lost too: fail them rather than report a commit that did not happen."""
        try:
            raw.execute(_ROLLBACK_TO)
            raw.execute(_RELEASE)
            intact = raw.in_transaction
        except sqlite3.Error:
            intact = False
        if not intact:
            self._group = None
            group.fail(exc)
            await self._discard(conn)

    async def _discard(self, conn: AsyncConnection) -> None:
        """End the group's transaction after a failure: roll the connection back (SQLAlchemy's own state may
        already count the transaction as over after a failed COMMIT), or replace it if even that fails."""
        try:
            if self._driver is not None and self._driver._raw.in_transaction:
                self._driver._raw.rollback()
            await conn.rollback()
        except Exception:
            await conn.invalidate()
            self._driver = None

    def _schedule_flush(self, group: _Group) -> None:
        task = asyncio.get_running_loop().create_task(self._flush(group))
        self._flushers.add(task)
        task.add_done_callback(self._flushers.discard)

    async def _flush(self, group: _Group) -> None:
        gate = self._gate
        assert gate is not None
        await gate.acquire()
        try:
            await self._commit(group)
        finally:
            gate.release()

    async def _commit(self, group: _Group) -> None:
        if self._group is not group:  # already failed and discarded
            return
        self._group = None
        conn = self._conn
        assert conn is not None
        try:
            if group.members:
                await conn.commit()  # COMMIT (and its fsync) in the helper thread
            else:
                await conn.rollback()
        except BaseException as exc:
            group.fail(exc)
            await self._discard(conn)
            if not isinstance(exc, Exception):
                raise
        else:
            if not group.done.done():
                group.done.set_result(None)

    async def close(self) -> None:
        if self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()
            self._conn, self._driver = None, None
        await self.engine.dispose()
