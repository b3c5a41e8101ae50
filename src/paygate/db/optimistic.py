"""A write transaction tried optimistically first, then on rows read locked.

The optimistic attempt decides on rows it did not lock — as an earlier transaction of this request wrote them,
or read by its own first statement outside the transaction
(:meth:`paygate.db.prepared.Prepared.fetch_unbound`) — and writes with guarded updates
(:meth:`paygate.db.prepared.Prepared.queue_guarded`, PostgreSQL): if a row changed meanwhile, nothing of it is
written and :class:`~paygate.db.pgbatch.RowChanged` is raised where its statement is sent; the locked attempt
then reads the current rows locked and decides again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.engine import Database
from paygate.db.pgbatch import RowChanged

__all__ = ["optimistic_first", "optimistic_then_locked"]

T = TypeVar("T")


async def optimistic_then_locked(
    db: Database,
    optimistic: Callable[[AsyncConnection], Awaitable[T]] | None,
    locked: Callable[[AsyncConnection], Awaitable[T]],
    *,
    urgent: bool = True,
    rolled_back: Callable[[], None] | None = None,
) -> T:
    """``optimistic`` (when given) in a write transaction of its own; if it raises ``RowChanged``,
    ``rolled_back()`` (to forget what the caller's state learnt from the transaction that did not happen), then
    ``locked`` in another. ``urgent`` (:meth:`Database.write <paygate.db.engine.Database.write>`), the default,
    for transactions recording what a processor already did, which are served first."""
    if optimistic is not None:
        try:
            async with db.write(urgent=urgent) as conn:
                return await optimistic(conn)
        except RowChanged:
            if rolled_back is not None:
                rolled_back()
    async with db.write(urgent=urgent) as conn:
        return await locked(conn)


async def optimistic_first(
    db: Database, txn: Callable[[AsyncConnection, bool], Awaitable[T]], *, rolled_back: Callable[[], None]
) -> T:
    """``txn(conn, optimistic)``: a write transaction that reads the rows it changes first, run with
    ``optimistic=True`` on PostgreSQL — reading them unlocked (``fetch_unbound``) with their versions and guarding
    its writes by those: two round trips instead of BEGIN, a locked read, the writes and COMMIT — and, if a row
    changed meanwhile, again with ``optimistic=False``, reading them locked, as it always runs on SQLite (where
    the write transaction holds the database's write lock anyway). Not ``urgent``: it starts new work."""
    return await optimistic_then_locked(
        db,
        (lambda conn: txn(conn, True)) if db.for_update else None,
        lambda conn: txn(conn, False),
        urgent=False,
        rolled_back=rolled_back,
    )
