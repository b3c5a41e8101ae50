"""A write transaction tried optimistically first, then on rows read locked.

The optimistic attempt decides on rows as an earlier transaction of this request wrote them (not read again)
and writes with guarded updates (:meth:`paygate.db.prepared.Prepared.queue_guarded`, PostgreSQL): if a row
changed meanwhile, nothing of it is written and :class:`~paygate.db.pgbatch.RowChanged` is raised where its
statement is sent; the locked attempt then reads the current rows locked and decides again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.engine import Database
from paygate.db.pgbatch import RowChanged

__all__ = ["optimistic_then_locked"]

T = TypeVar("T")


async def optimistic_then_locked(
    db: Database,
    optimistic: Callable[[AsyncConnection], Awaitable[T]] | None,
    locked: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    """``optimistic`` (when given) in a write transaction of its own; if it raises ``RowChanged``, ``locked``
    in another. Both are ``urgent`` writes: they record what a processor already did, so they are served first."""
    if optimistic is not None:
        try:
            async with db.write(urgent=True) as conn:
                return await optimistic(conn)
        except RowChanged:
            pass
    async with db.write(urgent=True) as conn:
        return await locked(conn)
