"""Idempotency keys with Stripe's semantics, plus crash recovery.

Contract of :func:`run_idempotent`:

* Key scope is (merchant, mode, key). The first request with a key *claims* it (insert-on-conflict) with a lock
  lease; its response — success or error, once execution began — is stored and replayed byte-for-byte (with
  ``Idempotent-Replayed: true``) to every later request with the same key for at least 24 hours.
* Same key, different method/path/parameters → 400 ``idempotency_error``. Same key while the first request still
  runs → 409 ``idempotency_key_in_use``. Requests that fail validation never reach this function, so they are not
  stored. ``LockTimeout``/``RateLimited`` errors are not stored either (nothing was executed).
* Crash safety: a handler that commits before it finishes (because it calls a processor between two
  transactions) must first :meth:`Guard.checkpoint` in the same transaction that records its intent. If the
  process dies or an unexpected exception escapes after that, the key is released *with* its checkpoint, and
  the next request with the same key resumes from it (re-asking the processor with the same deterministic
  idempotency key) instead of executing again. Without a checkpoint, nothing was committed, so the key is simply
  released.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import insert_ignore, locked
from paygate.db.engine import Database
from paygate.db.tables import idempotency_keys as ik
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import ApiError, IdempotencyInUse, IdempotencyMismatch, LockTimeout, RateLimited
from paygate.merchants.context import AuthContext

__all__ = ["LOCK_SECONDS", "RETENTION_SECONDS", "Guard", "PruneJob", "Reply", "error_reply", "prune", "run_idempotent"]

LOCK_SECONDS = 120  # longer than the slowest processor call (connector timeouts are well below this)
RETENTION_SECONDS = 24 * 3600
_NOT_STORED = (LockTimeout, RateLimited, IdempotencyInUse)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    replayed: bool = False


class Guard:
    """Handed to a handler. ``recovery`` is the checkpoint of an earlier execution that did not finish."""

    def __init__(self, row_id: int | None, recovery: dict[str, Any] | None) -> None:
        self.row_id = row_id
        self.recovery = recovery
        self.finished = False
        self.checkpointed = recovery is not None

    async def checkpoint(self, conn: AsyncConnection, data: dict[str, Any]) -> None:
        """Record what this execution is about to do externally, inside the caller's transaction."""
        if self.row_id is not None:
            await conn.execute(update(ik).where(ik.c.id == self.row_id).values(recovery=jsonx.dumps(data)))
        self.checkpointed = True

    async def finish(self, conn: AsyncConnection, status: int, body: bytes) -> None:
        """Store the response inside the caller's transaction (atomic with the state change)."""
        if self.row_id is not None:
            await conn.execute(
                update(ik)
                .where(ik.c.id == self.row_id)
                .values(state="finished", response_status=status, response_body=body.decode())
            )
        self.finished = True


Handler = Callable[[Guard], Awaitable[Reply]]


def error_reply(exc: ApiError) -> Reply:
    """The stored/sent form of an API error: its status and Stripe error envelope."""
    return Reply(exc.status, orjson.dumps(exc.to_body()))


async def _claim(
    db: Database, ctx: AuthContext, key: str, method: str, path: str, params_hash: str
) -> tuple[Guard | None, Reply | None]:
    now = clock.now()
    async with db.write() as conn:
        values = {
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "key": key,
            "method": method,
            "path": path,
            "params_hash": params_hash,
            "state": "started",
            "locked_until": now + LOCK_SECONDS,
            "created": now,
        }
        inserted = await insert_ignore(conn, ik, values)
        stmt = select(ik).where(ik.c.merchant_id == ctx.merchant_id, ik.c.livemode == ctx.livemode, ik.c.key == key)
        row = (await conn.execute(locked(stmt, conn))).mappings().one()
        if inserted:
            return Guard(row["id"], None), None
        if row["method"] != method or row["path"] != path or row["params_hash"] != params_hash:
            raise IdempotencyMismatch(key)
        if row["state"] == "finished":
            return None, Reply(row["response_status"], row["response_body"].encode(), replayed=True)
        if row["locked_until"] > now:
            raise IdempotencyInUse()
        # The earlier execution died (lease expired or released): take over, resuming from its checkpoint.
        await conn.execute(update(ik).where(ik.c.id == row["id"]).values(locked_until=now + LOCK_SECONDS))
        return Guard(row["id"], jsonx.loads(row["recovery"])), None


async def _release(db: Database, guard: Guard) -> None:
    async with db.write() as conn:
        if guard.checkpointed:
            await conn.execute(update(ik).where(ik.c.id == guard.row_id).values(locked_until=0))
        else:
            await conn.execute(delete(ik).where(ik.c.id == guard.row_id))


async def _store(db: Database, guard: Guard, reply: Reply) -> None:
    async with db.write() as conn:
        await guard.finish(conn, reply.status, reply.body)


async def run_idempotent(
    db: Database,
    ctx: AuthContext,
    *,
    key: str | None,
    method: str,
    path: str,
    params: dict[str, Any],
    handler: Handler,
) -> Reply:
    """Run ``handler`` at most once per idempotency key; see the module docstring for the full contract."""
    if key is None:
        try:
            return await handler(Guard(None, None))
        except ApiError as exc:
            return error_reply(exc)
    params_hash = jsonx.canonical_hash({"params": params})
    guard, replay = await _claim(db, ctx, key, method, path, params_hash)
    if replay is not None:
        return replay
    assert guard is not None
    try:
        reply = await handler(guard)
    except _NOT_STORED as exc:
        if not guard.finished:
            await _release(db, guard)
        return error_reply(exc)
    except ApiError as exc:
        reply = error_reply(exc)
        if not guard.finished:
            await _store(db, guard, reply)
        return reply
    except BaseException:
        if not guard.finished:
            await _release(db, guard)
        raise
    if not guard.finished:
        await _store(db, guard, reply)
    return reply


class PruneJob:
    """Worker job: drop finished idempotency keys past the 24 h retention, at most ``batch`` per round.

    Started (unfinished) keys are never pruned: they carry crash-recovery checkpoints."""

    name = "idempotency_prune"

    def __init__(self, db: Database, *, batch: int = 1000) -> None:
        self.db = db
        self.batch = batch

    async def run_once(self, gw: object = None) -> int:
        cutoff = clock.now() - RETENTION_SECONDS
        stmt = select(ik.c.id).where(ik.c.state == "finished", ik.c.created < cutoff).limit(self.batch)
        async with self.db.write() as conn:
            ids: list[int] = list((await conn.execute(stmt)).scalars())
            if ids:
                await conn.execute(delete(ik).where(ik.c.id.in_(ids)))
            return len(ids)


async def prune(db: Database, *, older_than: int = RETENTION_SECONDS) -> int:
    """Delete finished keys older than the retention period; returns how many."""
    async with db.write() as conn:
        result = await conn.execute(delete(ik).where(ik.c.state == "finished", ik.c.created < clock.now() - older_than))
        return int(result.rowcount or 0)
