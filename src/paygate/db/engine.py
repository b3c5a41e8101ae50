"""Engines and transactions for SQLite and PostgreSQL.

Only entry points (a request handler, a worker task, a CLI command) open transactions, through
:meth:`Database.write` and :meth:`Database.read`; services receive the open connection and never commit.

SQLite: WAL journal, ``busy_timeout``, foreign keys on. Write transactions start with ``BEGIN IMMEDIATE`` so the
database-wide write lock is taken up front; a deferred transaction that later tries to upgrade can fail with
"database is locked" regardless of the busy timeout. Reads use a separate engine with plain deferred ``BEGIN``
so they never wait for writers (WAL snapshot isolation).

PostgreSQL (psycopg 3, async): READ COMMITTED; writers lock the rows they change with ``SELECT … FOR UPDATE``
(``Database.for_update`` is true) and rely on conditional updates and constraints for the invariants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["Database", "async_url", "sync_url"]


def async_url(url: str) -> str:
    """Normalise a user-supplied URL to the async driver paygate uses (aiosqlite / psycopg)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return str(u.set(drivername="sqlite+aiosqlite"))
    if u.get_backend_name() == "postgresql":
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {u.drivername}")


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (used by Alembic and CLI checks)."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return str(u.set(drivername="sqlite"))
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn: Any, synchronous: str) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """Owns the engines. ``async with db.write() as conn`` is one write transaction (committed on success,
    rolled back on any exception); ``db.read()`` is a read-only snapshot."""

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL", echo: bool = False):
        self.url = async_url(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        self.for_update = not self.is_sqlite
        if self.is_sqlite:
            self._writer = self._sqlite_engine(immediate=True, pool_size=pool_size, sync=sqlite_synchronous, echo=echo)
            self._reader = self._sqlite_engine(immediate=False, pool_size=pool_size, sync=sqlite_synchronous, echo=echo)
        else:
            self._writer = create_async_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False, echo=echo
            )
            self._reader = self._writer

    def _sqlite_engine(self, *, immediate: bool, pool_size: int, sync: str, echo: bool) -> AsyncEngine:
        engine = create_async_engine(self.url, pool_size=pool_size, max_overflow=0, echo=echo)

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            _sqlite_pragmas(dbapi_conn, sync)

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @property
    def engine(self) -> AsyncEngine:
        return self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn
            await conn.rollback()

    async def dispose(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
