"""Idempotency keys with Stripe's semantics, plus crash recovery.

Contract of :func:`run_idempotent`:

* Key scope is (merchant, mode, key). The first request with a key *claims* it (an insert that the unique key
  refuses to every other request) with a lock lease; its response — success or error, once execution began —
  is stored and replayed byte-for-byte (with ``Idempotent-Replayed: true``) to every later request with the same
  key for at least 24 hours.
* Same key, different method/path/parameters → 400 ``idempotency_error``. Same key while the first request still
  runs → 409 ``idempotency_key_in_use``. Requests that fail validation never reach this function, so they are not
  stored; nor are those a handler refuses with :class:`Rejected` — checks that depend on the time or on other
  objects, which run under the key so that a replay is answered with its stored response, not refused by a
  check that no longer holds (a Checkout Session's ``expires_at`` window, say). ``LockTimeout``/``RateLimited``
  errors are not stored either (nothing was executed), nor is ``ProcessorTemporarilyUnavailable`` (the
  processor provably did nothing, and the answer asks for a retry — which the Stripe SDKs send with the same
  key): the key is released, keeping its checkpoint if the execution left one to resume from, or the handler
  frees it for a fresh execution with :meth:`Guard.forget`, in the transaction that undoes what it began.
  Not-stored errors keep their headers (``Retry-After`` …).
* Crash safety: a handler that commits before it finishes (because it calls a processor between two
  transactions) must first :meth:`Guard.checkpoint` in the same transaction that records its intent. If the
  process dies or an unexpected exception escapes after that, the key is released *with* its checkpoint, and
  the next request with the same key resumes from it (re-asking the processor with the same deterministic
  idempotency key) instead of executing again. Without a checkpoint, nothing was committed, so the key is simply
  released.
* Claim in the first write (``claim_with_first_write=True``, the payment hot path): instead of a transaction of
  its own before the handler runs, the claim is the first :meth:`Guard.checkpoint` / :meth:`Guard.finish`,
  written in the handler's own first write transaction — one transaction per call fewer. Only for handlers
  whose first committed write calls one of them and that call nothing external before it commits (so a
  handler running for a key another request holds changes nothing). If the key turns out to be taken, that
  transaction rolls back (:class:`KeyTaken`) and the request is answered as one arriving second is: replay,
  409, 400 or resumption; so is one that fails as not stored (``lock_timeout`` …) before claiming, since the
  lock may be held by the request holding its key. An error raised before the claim is stored by claiming the
  key with it. Until the
  claiming transaction is known to have committed (:func:`paygate.db.engine.after_commit`), the row is never
  touched by id; if that is never learnt, the 120 s lease frees the key, as after a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db import pgbatch
from paygate.db.dialect import insert_returning_id, insert_unique
from paygate.db.engine import Database, after_commit
from paygate.db.prepared import Prepared
from paygate.db.tables import idempotency_keys as ik
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import (
    ApiError,
    IdempotencyInUse,
    IdempotencyMismatch,
    LockTimeout,
    ProcessorTemporarilyUnavailable,
    RateLimited,
)
from paygate.merchants.context import AuthContext

__all__ = [
    "LOCK_SECONDS",
    "RETENTION_SECONDS",
    "Guard",
    "KeyTaken",
    "PruneJob",
    "Rejected",
    "Reply",
    "error_reply",
    "prune",
    "run_idempotent",
]

LOCK_SECONDS = 120  # longer than the slowest processor call (connector timeouts are well below this)
RETENTION_SECONDS = 24 * 3600


class Rejected(ApiError):
    """Raised by a handler, before it executed anything, to refuse the request with ``error``: answered as
    ``error`` is, not stored, the key released (module docstring). For checks that depend on the time or on
    other objects."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message, headers=error.headers)
        self.error = error
        self.status = error.status

    def to_body(self) -> dict[str, Any]:
        return self.error.to_body()


_NOT_STORED = (LockTimeout, RateLimited, IdempotencyInUse, ProcessorTemporarilyUnavailable, Rejected)

# Compiled once, sent straight to the driver (paygate.db.prepared).
_SET_RECOVERY = Prepared(update(ik).where(ik.c.id == bindparam("_id")).values(recovery=bindparam("_recovery")))
_SET_FINISHED = Prepared(
    update(ik)
    .where(ik.c.id == bindparam("_id"))
    .values(state="finished", response_status=bindparam("_status"), response_body=bindparam("_body"))
)
_key_row = select(ik).where(
    ik.c.merchant_id == bindparam("_merchant"), ik.c.livemode == bindparam("_livemode"), ik.c.key == bindparam("_key")
)
_GET_KEY = Prepared(_key_row)
_GET_KEY_LOCKED = Prepared(_key_row.with_for_update())


@dataclass(frozen=True, slots=True)
class Reply:
    """A response: status and JSON body (what is stored under a key), plus headers sent only with this one."""

    status: int
    body: bytes
    replayed: bool = False
    headers: tuple[tuple[str, str], ...] = ()


class KeyTaken(Exception):
    """A deferred claim found its key taken; raised inside the handler's transaction, which rolls back."""


class Guard:
    """Handed to a handler. ``recovery`` is the checkpoint of an earlier execution that did not finish.

    With ``claim`` (the row values of a deferred claim), the first :meth:`checkpoint` / :meth:`finish` inserts the
    key instead of updating it; ``claim_pending`` stays true until that transaction is known to have committed."""

    def __init__(self, row_id: int | None, recovery: dict[str, Any] | None, *, claim: dict[str, Any] | None = None):
        self.row_id = row_id
        self.recovery = recovery
        self.finished = False
        self.forgotten = False
        self.checkpointed = recovery is not None
        self.claim_values = claim  # the key row of a deferred claim (kept: an error may claim it later)
        self._claim = claim  # not written yet
        self.claim_pending = False
        # PostgreSQL: the row version (xmin) of the transaction that inserted a deferred claim, i.e. of every row
        # that transaction wrote, until changed (paygate.db.dialect.insert_unique). Known once it committed.
        self.version: str | None = None

    @property
    def settled(self) -> bool:
        """The key needs nothing more from this execution: its response is stored, or the key was forgotten."""
        return self.finished or self.forgotten

    @property
    def claimed(self) -> bool:
        """The key row exists and belongs to this execution (committed)."""
        return self.row_id is not None and not self.claim_pending

    def learns_version(self, conn: AsyncConnection) -> bool:
        """Whether this transaction's :meth:`checkpoint` / :meth:`finish` will claim the key and so set
        :attr:`version` to the row version of every row this transaction writes (PostgreSQL only)."""
        return self._claim is not None and conn.dialect.name == "postgresql"

    async def checkpoint(self, conn: AsyncConnection, data: dict[str, Any]) -> None:
        """Record what this execution is about to do externally, inside the caller's transaction."""
        if self._claim is not None:
            await self._claim_in(conn, recovery=jsonx.dumps(data))
        elif (row_id := await self._row_id(conn)) is not None:
            await _SET_RECOVERY.execute(conn, {"_id": row_id, "_recovery": jsonx.dumps(data)})
        # Checkpointed once that transaction commits: a key released after one that rolled back must be deleted
        # (nothing to resume from), not kept with no checkpoint.
        after_commit(self._checkpointed)

    async def finish(self, conn: AsyncConnection, status: int, body: bytes) -> None:
        """Store the response inside the caller's transaction (atomic with the state change)."""
        if self._claim is not None:
            await self._claim_in(conn, state="finished", response_status=status, response_body=body.decode())
        elif (row_id := await self._row_id(conn)) is not None:
            await _SET_FINISHED.execute(conn, {"_id": row_id, "_status": status, "_body": body.decode()})
        # Finished once that transaction commits: one that rolls back (an optimistic txn 2 that found its rows
        # changed, a failed commit) leaves the key to be stored or released as if finish() had not been called.
        after_commit(self._finished)

    async def forget(self, conn: AsyncConnection) -> None:
        """Delete the key inside the caller's transaction, checkpoint and all: for an execution that undoes in
        that transaction everything it committed before (the processor provably did nothing), so that a retry
        with the same key executes afresh instead of resuming. Settled once that transaction commits."""
        if (row_id := await self._row_id(conn)) is not None:
            await conn.execute(delete(ik).where(ik.c.id == row_id))
        after_commit(self._forgotten)

    def rolled_back(self) -> None:
        """The transaction this execution just ran rolled back (and will be run again): a claim it wrote is to be
        written again — by the next :meth:`checkpoint` / :meth:`finish` — and nothing it learnt of it holds."""
        if self.claim_pending:  # a claim not known to have committed was written by that transaction
            self._claim = self.claim_values
            self.claim_pending = False
            self.row_id = None
            self.version = None

    def _forgotten(self) -> None:
        self.forgotten = True

    async def _claim_in(self, conn: AsyncConnection, **values: Any) -> None:
        """Insert the key row inside the handler's transaction. On PostgreSQL the insert is queued with the
        transaction's writes (txn 1 of a payment is then one statement): its id arrives, or :class:`KeyTaken`
        is raised, where the queue is sent."""
        assert self._claim is not None
        await insert_unique(
            conn, ik, {**self._claim, **values}, on_id=self._inserted, taken=KeyTaken, on_version=self._versioned
        )
        self._claim = None
        self.claim_pending = True
        after_commit(self._committed)

    def _inserted(self, row_id: int) -> None:
        self.row_id = row_id

    def _versioned(self, version: str) -> None:
        self.version = version

    async def _row_id(self, conn: AsyncConnection) -> int | None:
        """The key row's id; a claim still queued in this transaction is sent first to learn it."""
        if self.row_id is None and self.claim_pending:
            await pgbatch.flush(conn)
        return self.row_id

    def _committed(self) -> None:
        self.claim_pending = False

    def _finished(self) -> None:
        self.finished = True

    def _checkpointed(self) -> None:
        self.checkpointed = True


Handler = Callable[[Guard], Awaitable[Reply]]


def error_reply(exc: ApiError) -> Reply:
    """The stored/sent form of an API error: its status and Stripe error envelope."""
    return Reply(exc.status, orjson.dumps(exc.to_body()), headers=tuple(exc.headers.items()))


def _key_values(ctx: AuthContext, key: str, method: str, path: str, params_hash: str, now: int) -> dict[str, Any]:
    return {
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


async def _claim(
    db: Database, ctx: AuthContext, key: str, method: str, path: str, params_hash: str
) -> tuple[Guard | None, Reply | None]:
    now = clock.now()
    async with db.write() as conn:
        row_id = await insert_returning_id(conn, ik, _key_values(ctx, key, method, path, params_hash, now))
        if row_id is not None:
            return Guard(row_id, None), None
        params = {"_merchant": ctx.merchant_id, "_livemode": ctx.livemode, "_key": key}
        row = await (_GET_KEY_LOCKED if db.for_update else _GET_KEY).fetch_one(conn, params)
        assert row is not None  # the insert conflicted with it, and keys are never deleted while started
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


async def _run_claimed(
    db: Database, ctx: AuthContext, key: str, method: str, path: str, params_hash: str, handler: Handler
) -> Reply:
    guard, replay = await _claim(db, ctx, key, method, path, params_hash)
    if replay is not None:
        return replay
    assert guard is not None
    try:
        reply = await handler(guard)
    except _NOT_STORED as exc:
        if not guard.settled:
            await _release(db, guard)
        return error_reply(exc)
    except ApiError as exc:
        reply = error_reply(exc)
        if not guard.settled:
            await _store(db, guard, reply)
        return reply
    except BaseException:
        if not guard.settled:
            await _release(db, guard)
        raise
    if not guard.settled:
        await _store(db, guard, reply)
    return reply


async def _run_deferred(db: Database, guard: Guard, handler: Handler) -> Reply | None:
    """Run ``handler`` claiming the key in its first write (module docstring); ``None`` when the key proved
    taken, so the caller answers as the classic path does."""
    try:
        reply = await handler(guard)
    except KeyTaken:
        return None
    except _NOT_STORED as exc:
        if not guard.claimed:  # maybe busy because of a request holding this key, or a replay: ask the key first
            return None
        if not guard.settled:
            await _release(db, guard)
        return error_reply(exc)
    except ApiError as exc:
        reply = error_reply(exc)
        if guard.claimed:
            if not guard.settled:
                await _store(db, guard, reply)
            return reply
        return reply if await _claim_finished(db, guard, reply) else None
    except BaseException:
        if guard.claimed and not guard.settled:
            await _release(db, guard)
        raise
    if guard.claimed:
        if not guard.settled:
            await _store(db, guard, reply)
        return reply
    if guard.claim_pending:  # committed or not, unknown: the lease settles it (never reached by our handlers)
        return reply
    return reply if await _claim_finished(db, guard, reply) else None


async def _claim_finished(db: Database, guard: Guard, reply: Reply) -> bool:
    """Claim the key with its response in one transaction (a handler that ended before claiming)."""
    assert guard.claim_values is not None
    fresh = Guard(None, None, claim=guard.claim_values)
    try:
        async with db.write() as conn:
            await fresh.finish(conn, reply.status, reply.body)
    except KeyTaken:
        return False
    return True


async def run_idempotent(
    db: Database,
    ctx: AuthContext,
    *,
    key: str | None,
    method: str,
    path: str,
    params: dict[str, Any],
    handler: Handler,
    claim_with_first_write: bool = False,
) -> Reply:
    """Run ``handler`` at most once per idempotency key; see the module docstring for the full contract."""
    if key is None:
        try:
            return await handler(Guard(None, None))
        except ApiError as exc:
            return error_reply(exc)
    params_hash = jsonx.canonical_hash({"params": params})
    if claim_with_first_write:
        claim = _key_values(ctx, key, method, path, params_hash, clock.now())
        reply = await _run_deferred(db, Guard(None, None, claim=claim), handler)
        if reply is not None:
            return reply
    return await _run_claimed(db, ctx, key, method, path, params_hash, handler)


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
