"""PostgreSQL group commit: single-statement write transactions sent together, one round trip for several.

A payment's two write transactions are one statement each on PostgreSQL (:mod:`paygate.db.pgbatch`), and a round
trip costs the client ~130-160 µs of CPU on a 2-vCPU VM (docs/performance.md) — most of what a payment costs
the API. Under load, several transactions of the same shape (the same SQL text: txn 1 of a card payment, txn 2
of a successful one) become ready in the same event-loop turn. :class:`GroupCommit` sends those together with
asyncpg's ``fetchmany`` — the statements pipelined, one ``Sync``, so one implicit transaction, one commit and
one WAL flush for all of them — and hands each member its own row.

Contract of :meth:`GroupCommit.send` (what a caller sees is what running its statement alone would give):

* The statement is sent alone, as before, when no other transaction of the same text and the same
  :class:`GroupCommit` (one per :class:`~paygate.db.engine.Database`) joins it within one event-loop turn.
* Success: every member's statement committed; each gets the row its own execution returned.
* A member's error reported by the server (a unique violation, a failed guard, a deadlock …) aborts the group's
  transaction as a whole — nothing of any member is written — and every member then runs its statement alone,
  on its own connection, getting its own answer (``KeyTaken``, ``RowChanged``, ``IntegrityError`` …).
* Any other failure after the group was sent (the connection broke, the leader was cancelled) leaves every
  member's outcome unknown, as a connection lost during a lone commit would: the leader sees that error, the
  others :class:`CommitOutcomeUnknown`. Nothing is retried then (it may have committed).
* A member cancelled before the group was sent leaves it; one cancelled later may still be committed (as a lone
  statement whose caller is cancelled mid-flight).

What grouping changes, and why it is safe here: members share one transaction, so a member may wait for a row
lock another member of a concurrent group holds (PostgreSQL's deadlock detection aborts one group, which is
then re-run member by member); and a later member sees an earlier member's writes — two members claiming the
same idempotency key fail the group with a unique violation and are re-run alone, where one wins. Only
statements whose executions return a known number of rows (exactly one: a ``RETURNING`` claim or a guard check;
or none) are grouped, so each member's row is known. Rows written by a group carry its transaction's id as
``xmin``, which is what each member's claim returns as its rows' version.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as _ClientDataError

from paygate.db.pgbatch import Write, combine, send_statement

__all__ = ["CommitOutcomeUnknown", "GroupCommit"]


class CommitOutcomeUnknown(Exception):
    """The round trip carrying this transaction with others failed after it was sent: it may have committed."""


_ALONE = object()  # outcome telling a member to run its statement alone


class _Member:
    __slots__ = ("args", "future")

    def __init__(self, args: list[Any], future: asyncio.Future[Any]) -> None:
        self.args = args
        self.future = future


class GroupCommit:
    """See the module docstring. One per database; bound to no event loop (members are grouped per loop)."""

    def __init__(self) -> None:
        self._forming: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, list[_Member]]] = (
            weakref.WeakKeyDictionary()
        )
        self.sizes: dict[int, int] = {}  # groups sent, by number of members (observability, tests)

    async def send(self, adapter: Any, group: list[Write]) -> None:
        """Run the one statement ``group`` makes as a transaction of its own (no ``BEGIN``), grouped with others
        of the same text when they are ready in the same turn; deliver its row to the ``RETURNING`` part."""
        sql, args = combine(group)
        on_row = group[-1].on_row
        rows_each = 1 if on_row is not None or any(part.guard for part in group) else 0
        loop = asyncio.get_running_loop()
        forming = self._forming.setdefault(loop, {})
        members = forming.get(sql)
        me = _Member(args, loop.create_future())
        if members is not None:
            members.append(me)
            try:
                outcome = await me.future
            except asyncio.CancelledError:
                if forming.get(sql) is members and me in members:
                    members.remove(me)  # not sent yet: leave the group
                raise
        else:
            outcome = await self._lead(adapter, sql, group, rows_each, forming, me)
        if outcome is _ALONE:
            await send_statement(adapter, group, sql, args, begin=False)
        elif on_row is not None:
            on_row(outcome)

    async def _lead(
        self,
        adapter: Any,
        sql: str,
        group: list[Write],
        rows_each: int,
        forming: dict[str, list[_Member]],
        me: _Member,
    ) -> Any:
        members = forming[sql] = [me]
        try:
            await asyncio.sleep(0)  # the transactions ready in this turn join
        except BaseException:
            if forming.get(sql) is members:
                del forming[sql]
            _settle(members[1:], lambda m: m.future.set_result(_ALONE))  # nothing sent: each alone
            raise
        if forming.get(sql) is members:
            del forming[sql]
        if len(members) == 1:
            self._count(1)
            return _ALONE
        self._count(len(members))
        arglists = [m.args for m in members]
        try:
            rows = await adapter._connection.fetchmany(sql, arglists)
        except (asyncpg.PostgresError, _ClientDataError):
            # Reported by the server, or an argument the client could not encode: fetchmany is atomic, so the
            # group was rolled back whole (or never reached the server). Each member runs alone.
            _settle(members[1:], lambda m: m.future.set_result(_ALONE))
            return _ALONE
        except BaseException as exc:
            unknown = CommitOutcomeUnknown(f"the group commit carrying this transaction failed: {type(exc).__name__}")
            _settle(members[1:], lambda m: m.future.set_exception(unknown))
            raise
        if len(rows) != rows_each * len(members):  # committed, but the rows cannot be told apart: never expected
            unknown = CommitOutcomeUnknown("a group commit returned an unexpected number of rows")
            _settle(members[1:], lambda m: m.future.set_exception(unknown))
            raise unknown
        for index, member in enumerate(members[1:], start=1):
            if not member.future.done():  # a member cancelled meanwhile is skipped
                member.future.set_result(rows[index] if rows_each else None)
        return rows[0] if rows_each else None

    def _count(self, size: int) -> None:
        self.sizes[size] = self.sizes.get(size, 0) + 1


def _settle(members: list[_Member], action: Callable[[_Member], None]) -> None:
    """Apply ``action`` to each member still waiting (a member cancelled meanwhile is skipped)."""
    for member in members:
        if not member.future.done():
            action(member)
