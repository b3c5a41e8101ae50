"""Claiming rows as jobs: ``FOR UPDATE SKIP LOCKED`` plus leases that expire when a worker dies.

Any table can be a job queue if it has a string ``id`` primary key and two columns::

    lease_owner       String, nullable   who holds the job (a worker id from :func:`worker_id`)
    lease_expires_at  BigInteger, nullable  unix seconds after which anyone may take it over

Contract:

* :func:`claim` runs inside the caller's **write** transaction. It selects up to ``limit`` rows matching ``where``
  whose lease is free (``NULL``) or expired, skipping rows another transaction has locked (PostgreSQL ``FOR
  UPDATE SKIP LOCKED``; on SQLite ``BEGIN IMMEDIATE`` already serialises writers), and stamps them with
  ``owner`` and ``now + lease_seconds``. Commit right after: the lease, not the row lock, protects the job
  while the (slow, networked) work runs outside any transaction (ARCHITECTURE.md rule 3).
* Finishing a job is a conditional update through :func:`owned` (``WHERE id = … AND lease_owner = me``): if the
  lease expired and another worker took the job over, the update matches nothing and the late result is
  dropped (``rowcount == 0``), so a job is never recorded twice.
* :func:`release` hands unfinished jobs back at once (graceful shutdown) instead of waiting for the lease.
* A worker killed with SIGKILL simply stops renewing; after ``lease_seconds`` its jobs are claimable again. The
  lease must therefore be longer than the longest single piece of work (e.g. the webhook timeout).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["claim", "lease_free", "owned", "release", "renew", "worker_id"]


def worker_id() -> str:
    """A process-unique worker identity: ``host:pid:random``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_free(table: Table, now: int) -> ColumnElement[bool]:
    """The job's lease is not held by anyone (never claimed, released, or expired)."""
    return or_(table.c.lease_expires_at.is_(None), table.c.lease_expires_at <= now)


async def claim(
    conn: AsyncConnection,
    table: Table,
    *,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    limit: int,
    owner: str,
    lease_seconds: int,
    now: int,
) -> list[dict[str, Any]]:
    """Claim up to ``limit`` due rows for ``owner``; returns them as dicts (with the new lease values)."""
    stmt = select(table).where(and_(*where), lease_free(table, now)).order_by(*order_by).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
    if not rows:
        return []
    expires = now + lease_seconds
    await conn.execute(
        update(table).where(table.c.id.in_([r["id"] for r in rows])).values(lease_owner=owner, lease_expires_at=expires)
    )
    for r in rows:
        r["lease_owner"], r["lease_expires_at"] = owner, expires
    return rows


def owned(table: Table, job_id: str, owner: str) -> ColumnElement[bool]:
    """WHERE clause for updating a job only while ``owner`` still holds it."""
    return and_(table.c.id == job_id, table.c.lease_owner == owner)


async def renew(conn: AsyncConnection, table: Table, job_id: str, owner: str, *, lease_seconds: int, now: int) -> bool:
    """Extend a held lease; False when the job was taken over (stop working on it)."""
    res = await conn.execute(
        update(table).where(owned(table, job_id, owner)).values(lease_expires_at=now + lease_seconds)
    )
    return bool(res.rowcount)


async def release(conn: AsyncConnection, table: Table, job_ids: Sequence[str], owner: str) -> int:
    """Give jobs back immediately (only those ``owner`` still holds); returns how many."""
    if not job_ids:
        return 0
    res = await conn.execute(
        update(table)
        .where(table.c.id.in_(list(job_ids)), table.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )
    return int(res.rowcount or 0)
