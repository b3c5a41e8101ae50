"""PostgreSQL write connections kept open between write transactions.

Why: opening a write transaction through SQLAlchemy's ``AsyncEngine.begin()`` — pool checkout, ``begin``,
``commit`` and the pool check-in with its reset, each a greenlet hop, plus a task and a shield to close the
connection — cost ~270-350 µs of CPU per transaction on the development VM on top of its statements; a
transaction of one queued statement costs ~210 µs in all on a connection kept open, against ~460-530 µs before
(docs/performance.md, item 17). A payment runs two write
transactions. :class:`KeptConnections` keeps the ``AsyncConnection`` objects themselves: a write transaction
takes one, runs its statements (``Prepared`` statements on the asyncpg connection directly, begun lazily by
:mod:`paygate.db.pgbatch`; anything else through SQLAlchemy on the same connection), and :func:`end` commits or
rolls back whichever of the two began.

Contract: :meth:`KeptConnections.take` returns an open connection that is in no transaction; callers hold one of
the :class:`~paygate.db.slots.Slots` while they have it, so at most ``slots`` connections exist; after
:func:`end` they :meth:`~KeptConnections.give_back` it, or :meth:`~KeptConnections.discard` it when ending
failed or the connection broke. Bound to the event loop it is first used on; :meth:`abandon` drops the
connections of a loop that is gone (terminated without awaiting, as they cannot be awaited any more).

Connections are not pre-pinged: one whose socket asyncpg has seen close is replaced before use; one that broke
without asyncpg noticing yet fails the transaction that takes it (as a pooled connection without
``pool_pre_ping`` would) and is then closed for good; the next transaction opens a new one.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paygate.db import pgbatch

__all__ = ["KeptConnections", "end"]


async def end(conn: AsyncConnection, *, commit: bool) -> None:
    """Commit (or roll back) the transaction open on ``conn``: SQLAlchemy's when a statement ran through it (it
    holds the driver's transaction too), else the driver's one that a ``Prepared`` statement began, if any.
    Errors are SQLAlchemy's wrappers, as from ``AsyncConnection.commit()``."""
    if conn.in_transaction():
        await (conn.commit() if commit else conn.rollback())
        return
    adapter = pgbatch.adapter_of(conn)
    transaction = adapter._transaction
    if transaction is None:
        return
    sql = "COMMIT" if commit else "ROLLBACK"
    action = transaction.commit if commit else transaction.rollback
    await pgbatch.run(adapter, sql, (), lambda _db: adapter._call_and_discard(action), begin=False)


def _usable(conn: AsyncConnection) -> bool:
    if conn.closed or conn.invalidated:
        return False
    raw: Any = pgbatch.adapter_of(conn)._connection
    return not raw.is_closed()


class KeptConnections:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._idle: list[AsyncConnection] = []

    async def take(self) -> AsyncConnection:
        while self._idle:
            conn = self._idle.pop()
            if _usable(conn):
                return conn
            self.discard(conn)
        return await self._engine.connect()

    def give_back(self, conn: AsyncConnection) -> None:
        self._idle.append(conn)

    @staticmethod
    def discard(conn: AsyncConnection) -> None:
        """Close ``conn`` for good, at once and without awaiting (so a cancelled caller cannot leave it half
        closed): invalidated outside any greenlet, SQLAlchemy's asyncpg adapter terminates the socket; the server
        rolls back whatever transaction was open."""
        with contextlib.suppress(Exception):
            conn.sync_connection.invalidate()  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close every idle connection (on the loop they belong to)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()

    def abandon(self) -> None:
        """Drop the connections of an event loop that is gone: invalidated outside any greenlet, SQLAlchemy's
        asyncpg adapter terminates each socket without awaiting."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self.discard(conn)
