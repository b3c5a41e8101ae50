"""The write path under the payment hot path: group commit on SQLite, prebuilt statements sent straight to the
driver (sqlite3 / asyncpg). Each test runs its own Database on the session database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy import Text, bindparam, cast, insert, literal_column, select, text, update
from sqlalchemy.exc import IntegrityError

from paygate.db import sqlite as sqlite_writer
from paygate.db.dialect import insert_returning_id, insert_unique
from paygate.db.engine import Database, after_commit
from paygate.db.pgbatch import RowChanged, flush
from paygate.db.prepared import Prepared
from paygate.db.tables import idempotency_keys, ledger_journals, ledger_postings, merchants
from paygate.idempotency.service import Guard
from paygate.kit.ids import new_id
from tests.support.databases import create_sqlite, selected_backends

pytestmark = pytest.mark.db
T = TypeVar("T")

_INSERT = Prepared(insert(merchants))
_BY_ID = Prepared(select(merchants).where(merchants.c.id == bindparam("_id")))
_BY_ID_LOCKED = Prepared(select(merchants).where(merchants.c.id == bindparam("_id")).with_for_update())


def _row(name: str = "m") -> dict[str, Any]:
    return {"id": new_id("acct"), "name": name, "raw_card_access": True, "settings": "{}", "created": 1}


def run(database_url: str, body: Callable[[Database], Awaitable[T]]) -> T:
    async def go() -> T:
        db = Database(database_url, pool_size=5)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _exists(db: Database, merchant_id: str) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(merchants.c.id).where(merchants.c.id == merchant_id))).first() is not None


def test_a_write_returns_only_once_other_connections_can_read_it(database_url: str) -> None:
    async def body(db: Database) -> list[bool]:
        async def one() -> bool:
            row = _row()
            async with db.write() as conn:
                await _INSERT.execute(conn, row)
            return await _exists(db, row["id"])  # a separate connection: sees committed data only

        return list(await asyncio.gather(*(one() for _ in range(20))))

    assert run(database_url, body) == [True] * 20


def test_a_failing_transaction_leaves_the_concurrent_ones_committed(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[bool], list[bool]]:
        rows = [_row() for _ in range(12)]

        async def one(i: int) -> None:
            async with db.write() as conn:
                await _INSERT.execute(conn, rows[i])
                if i % 2:
                    raise ValueError("this transaction fails after writing")

        results = await asyncio.gather(*(one(i) for i in range(12)), return_exceptions=True)
        assert [isinstance(r, ValueError) for r in results] == [bool(i % 2) for i in range(12)]
        present = [await _exists(db, r["id"]) for r in rows]
        return present, [not (i % 2) for i in range(12)]

    present, expected = run(database_url, body)
    assert present == expected


def test_after_commit_callbacks_run_after_a_commit_and_never_after_a_rollback(database_url: str) -> None:
    async def body(db: Database) -> list[str]:
        seen: list[str] = []
        row = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, row)
            after_commit(lambda: seen.append("committed"))
            assert seen == []
        with pytest.raises(ValueError):
            async with db.write() as conn:
                after_commit(lambda: seen.append("rolled back"))
                raise ValueError("roll back")
        with pytest.raises(RuntimeError):
            after_commit(lambda: None)  # outside a write transaction
        return seen

    assert run(database_url, body) == ["committed"]


def test_prepared_writes_are_visible_to_later_statements_of_their_transaction(database_url: str) -> None:
    async def body(db: Database) -> tuple[Any, Any, bool]:
        row = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, row)
            through_sqlalchemy = (
                await conn.execute(select(merchants.c.name).where(merchants.c.id == row["id"]))
            ).scalar()
            direct = await _BY_ID.fetch_one(conn, {"_id": row["id"]})
        assert direct is not None
        return through_sqlalchemy, direct["name"], direct["raw_card_access"]

    name_a, name_b, flag = run(database_url, body)
    assert (name_a, name_b) == ("m", "m")
    assert flag is True  # a bool, as SQLAlchemy returns it, also from SQLite's 0/1


def test_prepared_statement_errors_are_sqlalchemy_errors_and_roll_back(database_url: str) -> None:
    async def body(db: Database) -> bool:
        first, extra = _row(), _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, first)
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await _INSERT.execute(conn, extra)
                await _INSERT.execute(conn, {**first, "name": "duplicate id"})
        return await _exists(db, extra["id"])

    assert run(database_url, body) is False


# ------------------------------------------------------------------------------------------- SQLite only


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database of the test's own: group commit is SQLite's write path, whatever the session's backend."""
    return create_sqlite(tmp_path)


def test_concurrent_sqlite_writes_share_one_commit(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    commits: list[int] = []
    real = sqlite_writer.SqliteWriter._commit

    async def counting(self: sqlite_writer.SqliteWriter, group: Any) -> None:
        commits.append(group.members)
        await real(self, group)

    monkeypatch.setattr(sqlite_writer.SqliteWriter, "_commit", counting)

    async def body(db: Database) -> None:
        async def one() -> None:
            async with db.write() as conn:
                await _INSERT.execute(conn, _row())

        await asyncio.gather(*(one() for _ in range(30)))

    run(sqlite_url, body)
    assert sum(commits) == 30
    assert len(commits) < 30  # grouped: fewer COMMITs (fsyncs) than transactions


def test_a_failed_group_commit_fails_every_member_and_keeps_nothing(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sqlite_writer._InlineConnection.commit
    failures = {"left": 1}

    async def failing_once(self: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        await real(self)

    monkeypatch.setattr(sqlite_writer._InlineConnection, "commit", failing_once)

    async def body(db: Database) -> tuple[list[BaseException | None], list[bool], bool]:
        rows = [_row() for _ in range(5)]

        async def one(row: dict[str, Any]) -> None:
            async with db.write() as conn:
                await _INSERT.execute(conn, row)

        results = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        present = [await _exists(db, r["id"]) for r in rows]
        later = _row()
        await one(later)  # the writer recovers
        return list(results), present, await _exists(db, later["id"])

    results, present, later_present = run(sqlite_url, body)
    assert all(isinstance(r, sqlite_writer.GroupCommitFailed) for r in results)
    assert present == [False] * 5
    assert later_present


def test_a_write_inside_a_write_raises_instead_of_waiting_for_itself(sqlite_url: str) -> None:
    async def body(db: Database) -> None:
        async with db.write(), db.write():
            pass

    with pytest.raises(RuntimeError, match="cannot open another write transaction"):
        run(sqlite_url, body)


# ------------------------------------------------------------------------------------------- write batching
# On PostgreSQL the writes of a transaction are queued and sent as one statement (paygate.db.pgbatch); the same
# program must mean the same thing on both databases.

_RENAME = Prepared(update(merchants).where(merchants.c.id == bindparam("_id")).values(name=bindparam("_name")))


def _key(merchant_id: str, key: str) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "livemode": False,
        "key": key,
        "method": "POST",
        "path": "/v1/x",
        "params_hash": "h",
        "state": "started",
        "locked_until": 0,
        "created": 1,
    }


def test_later_updates_of_a_row_apply_in_program_order(database_url: str) -> None:
    async def body(db: Database) -> str:
        row = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, row)
            for name in ("first", "second", "third"):
                await _RENAME.execute(conn, {"_id": row["id"], "_name": name})
        async with db.read() as conn:
            found = await _BY_ID.fetch_one(conn, {"_id": row["id"]})
        assert found is not None
        return str(found["name"])

    assert run(database_url, body) == "third"


def test_a_read_sees_the_writes_queued_before_it_in_its_transaction(database_url: str) -> None:
    async def body(db: Database) -> list[str | None]:
        row = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, row)
            await _RENAME.execute(conn, {"_id": row["id"], "_name": "renamed"})
            first = await _BY_ID.fetch_one(conn, {"_id": row["id"]})
            await _RENAME.execute(conn, {"_id": row["id"], "_name": "again"})
            second = await _BY_ID.fetch_one(conn, {"_id": row["id"]})
        return [r["name"] if r else None for r in (first, second)]

    assert run(database_url, body) == ["renamed", "again"]


def test_rows_of_one_execute_many_keep_their_order(database_url: str) -> None:
    async def body(db: Database) -> list[int]:
        journal = new_id("jrnl")
        amounts = [5, -3, 7, -9, 11, -11]
        async with db.write() as conn:
            await Prepared(insert(ledger_journals)).execute(
                conn,
                {
                    "id": journal,
                    "merchant_id": "acct_x",
                    "livemode": False,
                    "kind": "test",
                    "ref_id": journal,
                    "currency": "eur",
                    "created": 1,
                },
            )
            rows = [{"journal_id": journal, "account": "a", "amount": a, "currency": "eur"} for a in amounts]
            await Prepared(insert(ledger_postings)).execute_many(conn, rows)
        async with db.read() as conn:
            found = await conn.execute(
                select(ledger_postings.c.amount)
                .where(ledger_postings.c.journal_id == journal)
                .order_by(ledger_postings.c.id)
            )
            return [r[0] for r in found]

    assert run(database_url, body) == [5, -3, 7, -9, 11, -11]


def test_a_taken_key_rolls_back_the_writes_sent_with_the_claim(database_url: str) -> None:
    """The hot path's shape: rows queued, then an INSERT … ON CONFLICT DO NOTHING RETURNING that finds the key
    taken; nothing of the transaction may remain."""

    async def body(db: Database) -> tuple[bool, bool, bool]:
        first, second = _row(), _row()
        key = _key(first["id"], new_id("key"))
        async with db.write() as conn:
            await _INSERT.execute(conn, first)
            won = await insert_returning_id(conn, idempotency_keys, key) is not None
        lost = True
        with pytest.raises(LookupError):
            async with db.write() as conn:
                await _INSERT.execute(conn, second)
                lost = await insert_returning_id(conn, idempotency_keys, key) is None
                if lost:
                    raise LookupError("key taken")
        return won, lost, await _exists(db, second["id"])

    assert run(database_url, body) == (True, True, False)


def test_write_transactions_are_served_in_arrival_order_when_connections_run_short(database_url: str) -> None:
    """30 payment-shaped tasks (a write, a pause, another write) on 2 connections: every transaction starts in
    the order its write() was called. (PostgreSQL's pool queue alone let newcomers overtake waiters, which at
    256 in flight starved some payments for seconds.)"""

    async def body() -> tuple[list[int], list[int]]:
        db = Database(database_url, pool_size=2)
        arrived: list[int] = []
        entered: list[int] = []
        ticket = iter(range(10_000))

        async def one_write() -> None:
            mine = next(ticket)
            arrived.append(mine)
            async with db.write() as conn:
                entered.append(mine)
                await _INSERT.execute(conn, _row())

        async def payment(i: int) -> None:
            await one_write()
            for _ in range(i % 5):  # the "processor call": a few loop turns, different per task
                await asyncio.sleep(0)
            await one_write()

        try:
            await asyncio.gather(one_write(), one_write())  # both connections opened (connecting takes real I/O)
            arrived.clear()
            entered.clear()
            await asyncio.gather(*(payment(i) for i in range(30)))
        finally:
            await db.dispose()
        return arrived, entered

    arrived, entered = asyncio.run(body())
    assert len(entered) == 60
    assert entered == arrived


def test_a_read_inside_a_write_does_not_wait_for_a_connection_when_every_write_slot_is_taken(
    database_url: str,
) -> None:
    """One connection in the pool, held by the write: the read inside it still gets one (PostgreSQL keeps a
    couple of connections beyond the pool for reads; SQLite reads have their own)."""

    async def body() -> bool:
        db = Database(database_url, pool_size=1)
        row = _row()
        try:
            async with db.write() as conn:
                await _INSERT.execute(conn, row)
                return await asyncio.wait_for(_exists(db, row["id"]), timeout=30)  # sees committed data only
        finally:
            await db.dispose()

    assert asyncio.run(body()) is False


class _Taken(Exception):
    pass


def test_insert_unique_reports_its_id_after_the_commit_or_raises_taken_and_keeps_nothing(database_url: str) -> None:
    """The idempotency claim's shape: rows queued, then insert_unique of a key. The first transaction gets the
    key's id; the second, finding the key taken, raises the caller's exception and leaves none of its rows."""

    async def body(db: Database) -> tuple[list[Any], bool, list[Any]]:
        first, second = _row(), _row()
        key = _key(first["id"], new_id("key"))
        ids: list[Any] = []
        async with db.write() as conn:
            await _INSERT.execute(conn, first)
            await insert_unique(conn, idempotency_keys, key, on_id=ids.append, taken=_Taken)
        more: list[Any] = []
        with pytest.raises(_Taken):
            async with db.write() as conn:
                await _INSERT.execute(conn, second)
                await insert_unique(conn, idempotency_keys, key, on_id=more.append, taken=_Taken)
        return ids, await _exists(db, second["id"]), more

    ids, second_kept, more = run(database_url, body)
    assert len(ids) == 1 and isinstance(ids[0], int)
    assert second_kept is False and more == []


def test_a_key_inserted_concurrently_goes_to_exactly_one_transaction(database_url: str) -> None:
    """Ten transactions race to insert the same key with rows of their own: one wins; the others raise taken
    and keep none of their rows."""

    async def body(db: Database) -> list[tuple[str, bool]]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        key = _key(owner["id"], new_id("key"))

        async def one() -> tuple[str, bool]:
            row = _row()
            try:
                async with db.write() as conn:
                    await _INSERT.execute(conn, row)
                    await insert_unique(conn, idempotency_keys, key, on_id=lambda _id: None, taken=_Taken)
            except _Taken:
                return "taken", await _exists(db, row["id"])
            return "won", await _exists(db, row["id"])

        return list(await asyncio.gather(*(one() for _ in range(10))))

    outcomes = run(database_url, body)
    assert sorted(outcomes) == [("taken", False)] * 9 + [("won", True)]


async def _deferred_guard(db: Database) -> Guard:
    """A guard whose claim is deferred to its first checkpoint/finish, for a merchant row written first."""
    owner = _row()
    async with db.write() as conn:
        await _INSERT.execute(conn, owner)
    return Guard(None, None, claim=_key(owner["id"], new_id("key")))


async def _key_row_of(db: Database, guard: Guard) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(idempotency_keys).where(idempotency_keys.c.id == guard.row_id))).one()


def test_a_queued_claim_is_sent_before_a_later_update_of_its_row_in_the_same_transaction(database_url: str) -> None:
    """Guard.finish() after Guard.checkpoint() in one transaction: the update by id needs the id of the claim
    still queued; the claim goes out first and the update finds the row."""

    async def body(db: Database) -> tuple[str, str | None, bool]:
        guard = await _deferred_guard(db)
        async with db.write() as conn:
            await guard.checkpoint(conn, {"op": "x"})
            await guard.finish(conn, 200, b'{"ok": true}')
        found = await _key_row_of(db, guard)
        return found.state, found.response_body, guard.claimed

    assert run(database_url, body) == ("finished", '{"ok": true}', True)


def test_a_guard_is_finished_only_once_the_transaction_storing_its_response_commits(database_url: str) -> None:
    """An optimistic txn 2 that rolls back after Guard.finish() must leave the key to be stored or released."""

    async def body(db: Database) -> tuple[bool, bool, str]:
        guard = await _deferred_guard(db)
        async with db.write() as conn:
            await guard.checkpoint(conn, {"op": "x"})
        with pytest.raises(ValueError):
            async with db.write() as conn:
                await guard.finish(conn, 200, b'{"first": true}')
                raise ValueError("rolled back after finish")
        after_rollback = guard.finished
        async with db.write() as conn:
            await guard.finish(conn, 200, b'{"second": true}')
        found = await _key_row_of(db, guard)
        return after_rollback, guard.finished, found.response_body

    assert run(database_url, body) == (False, True, '{"second": true}')


def test_a_guard_is_checkpointed_only_once_the_transaction_storing_its_checkpoint_commits(database_url: str) -> None:
    """A checkpoint whose transaction rolled back stores nothing to resume from: the guard must not say so."""

    async def body(db: Database) -> tuple[bool, bool, str | None]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
            row_id = await insert_returning_id(conn, idempotency_keys, _key(owner["id"], new_id("key")))
        guard = Guard(row_id, None)  # a key claimed in a transaction of its own, no checkpoint yet
        with pytest.raises(ValueError):
            async with db.write() as conn:
                await guard.checkpoint(conn, {"op": "first"})
                raise ValueError("rolled back after checkpoint")
        after_rollback = guard.checkpointed
        async with db.write() as conn:
            await guard.checkpoint(conn, {"op": "second"})
        found = await _key_row_of(db, guard)
        return after_rollback, guard.checkpointed, found.recovery

    assert run(database_url, body) == (False, True, '{"op":"second"}')


# ------------------------------------------------------------------------------------------- PostgreSQL only
# What goes over the wire is asyncpg's: these run on the [postgres] backend only (when it is selected).
postgres_only = pytest.mark.parametrize("backend", [b for b in selected_backends() if b == "postgres"], indirect=True)


class _Recorder:
    """The first word of every statement the asyncpg connection behind ``conn`` sends from now until
    :meth:`stop` (call it after the transaction's block: the last statement goes out as the block exits)."""

    def __init__(self, conn: Any) -> None:
        self.sent: list[str] = []
        self._raw = conn.sync_connection.connection.dbapi_connection._connection
        self._raw.add_query_logger(self._record)

    def _record(self, query: Any) -> None:
        self.sent.append(query.query.split()[0].rstrip(";").upper())

    def stop(self) -> list[str]:
        self._raw.remove_query_logger(self._record)
        return self.sent


@postgres_only
def test_a_transaction_of_queued_writes_is_one_statement_without_begin_or_commit(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[str], list[Any], bool]:
        owner, row = _row(), _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        ids: list[Any] = []
        async with db.write() as conn:
            recorder = _Recorder(conn)
            await _INSERT.execute(conn, row)
            await insert_unique(
                conn, idempotency_keys, _key(owner["id"], new_id("key")), on_id=ids.append, taken=_Taken
            )
        return recorder.stop(), ids, await _exists(db, row["id"])

    sent, ids, kept = run(database_url, body)
    assert sent == ["WITH"] and len(ids) == 1 and kept


@postgres_only
def test_a_transaction_that_reads_first_still_begins_and_commits(database_url: str) -> None:
    async def body(db: Database) -> list[str]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        async with db.write() as conn:
            recorder = _Recorder(conn)
            await _BY_ID.fetch_one(conn, {"_id": owner["id"]})
            await _INSERT.execute(conn, _row())
        return recorder.stop()

    assert run(database_url, body) == ["BEGIN", "SELECT", "INSERT", "COMMIT"]


@postgres_only
def test_a_failed_single_statement_transaction_leaves_the_connection_usable(database_url: str) -> None:
    """With a pool of one, the connection whose implicit transaction failed serves the next write."""

    async def body(db: Database) -> tuple[bool, bool]:
        first = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, first)
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await _INSERT.execute(conn, {**first, "name": "duplicate id"})
        second = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, second)
            await _BY_ID.fetch_one(conn, {"_id": second["id"]})
        return await _exists(db, first["id"]), await _exists(db, second["id"])

    async def go() -> tuple[bool, bool]:
        db = Database(database_url, pool_size=1)
        try:
            return await body(db)
        finally:
            await db.dispose()

    assert asyncio.run(go()) == (True, True)


# ------------------------------------------------------------------------------------------- guarded writes
_VERSION_OF = Prepared(
    select(cast(literal_column("xmin"), Text).label("version")).where(merchants.c.id == bindparam("_id"))
)
_GUARDED_RENAME = Prepared(
    update(merchants)
    .where(merchants.c.id == bindparam("_id"), cast(literal_column("xmin"), Text) == bindparam("_version"))
    .returning(literal_column("1"))
)
_SET_NAME = Prepared(update(merchants).where(merchants.c.id == bindparam("_id")))
_INSERT_KEY = Prepared(insert(idempotency_keys))
_KEY_ROW = Prepared(select(idempotency_keys.c.id).where(idempotency_keys.c.key == bindparam("_key")))
_NAME_OF = Prepared(select(merchants.c.name).where(merchants.c.id == bindparam("_id")))


async def _version(db: Database, merchant_id: str) -> str:
    async with db.read() as conn:
        return str(await _VERSION_OF.scalar(conn, {"_id": merchant_id}))


async def _name(db: Database, merchant_id: str) -> str:
    async with db.read() as conn:
        return str(await _NAME_OF.scalar(conn, {"_id": merchant_id}))


def _companion(owner: str) -> dict[str, Any]:
    """A row of another table, written in the same transaction as a guarded write."""
    return _key(owner, new_id("key"))


async def _companion_exists(db: Database, row: dict[str, Any]) -> bool:
    async with db.read() as conn:
        return await _KEY_ROW.fetch_one(conn, {"_key": row["key"]}) is not None


async def _optimistic(db: Database, owner: str, version: str, companion: dict[str, Any]) -> None:
    """Rename ``owner`` guarded by ``version`` and insert ``companion``, in one transaction."""
    async with db.write() as conn:
        await _INSERT_KEY.execute(conn, companion)
        _GUARDED_RENAME.queue_guarded(conn, {"name": "optimistic", "_id": owner, "_version": version})


@postgres_only
def test_a_guarded_write_on_an_unchanged_row_applies_with_its_transaction_in_one_statement(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[str], str, bool]:
        owner = _row()
        companion = _companion(owner["id"])
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        version = await _version(db, owner["id"])
        async with db.write() as conn:
            recorder = _Recorder(conn)
            await _INSERT_KEY.execute(conn, companion)
            _GUARDED_RENAME.queue_guarded(conn, {"name": "optimistic", "_id": owner["id"], "_version": version})
        return recorder.stop(), await _name(db, owner["id"]), await _companion_exists(db, companion)

    assert run(database_url, body) == (["WITH"], "optimistic", True)


@postgres_only
def test_a_guarded_write_on_a_changed_row_raises_row_changed_and_writes_nothing(database_url: str) -> None:
    async def body(db: Database) -> tuple[str, bool]:
        owner = _row()
        companion = _companion(owner["id"])
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        version = await _version(db, owner["id"])
        async with db.write() as conn:  # someone else changes the row after it was read
            await _SET_NAME.execute(conn, {"name": "changed meanwhile", "_id": owner["id"]})
        with pytest.raises(RowChanged):
            await _optimistic(db, owner["id"], version, companion)
        return await _name(db, owner["id"]), await _companion_exists(db, companion)

    assert run(database_url, body) == ("changed meanwhile", False)


@postgres_only
def test_the_version_of_a_claim_is_the_version_of_every_row_its_transaction_wrote(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[str], str, str]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, _row())
        versions: list[str] = []
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
            await insert_unique(
                conn,
                idempotency_keys,
                _key(owner["id"], new_id("key")),
                on_id=lambda _id: None,
                taken=_Taken,
                on_version=versions.append,
            )
        return versions, await _version(db, owner["id"]), versions[0] if versions else ""

    versions, stored, claimed = run(database_url, body)
    assert len(versions) == 1 and stored == claimed


@postgres_only
@pytest.mark.parametrize("other_changes_it", [True, False], ids=["changed", "only-locked"])
def test_a_guarded_write_waits_for_a_transaction_holding_its_row_then_judges_the_newest_version(
    database_url: str, other_changes_it: bool
) -> None:
    """READ COMMITTED re-checks the guard on the row as the lock holder left it: a change committed while the
    guarded statement waited fails it; a lock released without a change does not."""

    async def body(db: Database) -> tuple[str, bool, bool]:
        owner = _row()
        companion = _companion(owner["id"])
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        version = await _version(db, owner["id"])
        locked, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with db.write() as conn:
                await _BY_ID_LOCKED.fetch_one(conn, {"_id": owner["id"]})
                if other_changes_it:
                    await _SET_NAME.execute(conn, {"name": "holder", "_id": owner["id"]})
                    await flush(conn)
                locked.set()
                await release.wait()

        held = asyncio.create_task(holder())
        await locked.wait()
        guarded = asyncio.create_task(_optimistic(db, owner["id"], version, companion))
        await asyncio.sleep(0.3)
        waited = not guarded.done()
        release.set()
        await held
        changed = False
        try:
            await guarded
        except RowChanged:
            changed = True
        return await _name(db, owner["id"]), waited, changed == (not await _companion_exists(db, companion))

    name, waited, consistent = run(database_url, body)
    assert waited and consistent
    assert name == ("holder" if other_changes_it else "optimistic")


async def _read_then_claim(
    db: Database,
    owner: str,
    key: str,
    delivered: list[Any],
    *,
    before_write: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """An optimistic transaction: read ``owner``'s version unbound, rename it guarded by that version and claim
    ``key``; ``before_write`` runs between the read and the writes. The claim's id and version are appended to
    ``delivered`` when they arrive. Returns the first word of each statement sent."""
    recorders: list[_Recorder] = []
    try:
        async with db.write() as conn:
            recorders.append(_Recorder(conn))
            read = await _VERSION_OF.fetch_unbound(conn, {"_id": owner})
            assert read is not None
            if before_write is not None:
                await before_write()
            _GUARDED_RENAME.queue_guarded(conn, {"name": "optimistic", "_id": owner, "_version": read["version"]})
            await insert_unique(
                conn,
                idempotency_keys,
                _key(owner, key),
                on_id=delivered.append,
                taken=_Taken,
                on_version=delivered.append,
            )
    finally:
        sent = recorders[0].stop()
    return sent


@postgres_only
def test_an_unbound_read_then_guarded_writes_with_a_claim_are_two_statements_without_begin_or_commit(
    database_url: str,
) -> None:
    async def body(db: Database) -> tuple[list[str], list[Any], bool, str, str]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        key = new_id("key")
        delivered: list[Any] = []
        sent = await _read_then_claim(db, owner["id"], key, delivered)
        exists = await _companion_exists(db, {"key": key})
        return sent, delivered, exists, await _name(db, owner["id"]), await _version(db, owner["id"])

    sent, delivered, exists, name, version = run(database_url, body)
    assert sent == ["SELECT", "WITH"]
    assert exists and name == "optimistic"
    assert len(delivered) == 2 and delivered[1] == version  # the claim's id, then its version: the renamed row's


@postgres_only
def test_a_claim_sent_with_a_guard_that_fails_is_not_written_and_delivers_nothing(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[Any], bool, str]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        key = new_id("key")

        async def someone_else_renames() -> None:
            async with db.write() as conn:
                await _SET_NAME.execute(conn, {"name": "changed meanwhile", "_id": owner["id"]})

        delivered: list[Any] = []
        with pytest.raises(RowChanged):
            await _read_then_claim(db, owner["id"], key, delivered, before_write=someone_else_renames)
        return delivered, await _companion_exists(db, {"key": key}), await _name(db, owner["id"])

    assert run(database_url, body) == ([], False, "changed meanwhile")


@postgres_only
def test_an_unbound_read_after_anything_was_queued_or_sent_is_refused(database_url: str) -> None:
    async def body(db: Database) -> list[str]:
        owner = _row()
        refused: list[str] = []
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
            with pytest.raises(RuntimeError):
                await _BY_ID.fetch_unbound(conn, {"_id": owner["id"]})
            refused.append("queued")
        async with db.write() as conn:
            await _BY_ID.fetch_one(conn, {"_id": owner["id"]})
            with pytest.raises(RuntimeError):
                await _BY_ID.fetch_unbound(conn, {"_id": owner["id"]})
            refused.append("sent")
        return refused

    assert run(database_url, body) == ["queued", "sent"]


def test_an_unbound_read_outside_postgres_is_an_ordinary_read(database_url: str) -> None:
    async def body(db: Database) -> tuple[Any, Any]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        async with db.write() as conn:
            inside = await _BY_ID.fetch_unbound(conn, {"_id": owner["id"]})
        async with db.read() as conn:
            outside = await _BY_ID.fetch_unbound(conn, {"_id": owner["id"]})
        return (inside or {}).get("name"), (outside or {}).get("name")

    assert run(database_url, body) == ("m", "m")


# ------------------------------------------------------------------------------------------- kept write connections
async def _backend_pid(conn: Any) -> int:
    return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


@postgres_only
def test_write_transactions_reuse_kept_connections_and_never_hold_more_than_the_pool_size(database_url: str) -> None:
    async def body(db: Database) -> tuple[int, int, set[int]]:
        async with db.write() as conn:
            first = await _backend_pid(conn)
        async with db.write() as conn:
            again = await _backend_pid(conn)

        async def one() -> int:
            async with db.write() as conn:
                pid = await _backend_pid(conn)
                await asyncio.sleep(0.01)
                return pid

        pids = set(await asyncio.gather(*(one() for _ in range(40))))
        return first, again, pids

    first, again, pids = run(database_url, body)  # pool_size=5
    assert first == again and len(pids) <= 5


@postgres_only
def test_a_kept_connection_the_server_closed_is_replaced_without_failing_a_transaction(database_url: str) -> None:
    async def body(db: Database) -> tuple[bool, bool]:
        async with db.write() as conn:
            pid = await _backend_pid(conn)
        async with db.read() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.sleep(0.2)  # the kept connection sees its socket close
        row = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, row)
            replaced = await _backend_pid(conn) != pid
        return replaced, await _exists(db, row["id"])

    assert run(database_url, body) == (True, True)


@postgres_only
def test_a_failed_sqlalchemy_statement_rolls_back_the_kept_connections_transaction(database_url: str) -> None:
    """A transaction begun by a Prepared write and continued through SQLAlchemy: the failure rolls both back and
    the connection serves the next transaction."""

    async def body(db: Database) -> tuple[bool, bool]:
        first, second = _row(), _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, first)
        with pytest.raises(IntegrityError):
            async with db.write() as conn:
                await _INSERT.execute(conn, second)
                await conn.execute(insert(merchants).values(**first))  # duplicate id
        third = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, third)
            await _BY_ID.fetch_one(conn, {"_id": third["id"]})
        return await _exists(db, second["id"]), await _exists(db, third["id"])

    assert run(database_url, body) == (False, True)


@postgres_only
def test_one_database_serves_successive_event_loops(database_url: str) -> None:
    """The CLI and tests run several asyncio.run() with one Database: kept connections of a finished loop are
    dropped, the next loop opens its own."""
    db = Database(database_url, pool_size=2)
    rows = [_row(), _row()]

    async def write(row: dict[str, Any]) -> None:
        async with db.write() as conn:
            await _INSERT.execute(conn, row)

    asyncio.run(write(rows[0]))
    asyncio.run(write(rows[1]))

    async def check() -> list[bool]:
        try:
            return [await _exists(db, r["id"]) for r in rows]
        finally:
            await db.dispose()

    assert asyncio.run(check()) == [True, True]


# ------------------------------------------------------------------------------------------- group commit
async def _claim_with_companion(
    db: Database, owner: str, key: dict[str, Any], companion: dict[str, Any], start: asyncio.Event
) -> tuple[str, Any, str | None]:
    """One transaction like a payment's txn 1: an insert and a claim, one statement. (outcome, id, version)."""
    ids: list[Any] = []
    versions: list[str] = []
    try:
        async with db.write() as conn:  # every transaction holds its connection before the start signal
            await start.wait()
            await _INSERT.execute(conn, companion)
            await insert_unique(conn, idempotency_keys, key, on_id=ids.append, taken=_Taken, on_version=versions.append)
    except _Taken:  # raised where the queue is sent: as the transaction ends
        return "taken", None, None
    return "won", ids[0], versions[0]


async def _key_id(db: Database, key: str) -> Any:
    async with db.read() as conn:
        return (
            await conn.execute(select(idempotency_keys.c.id).where(idempotency_keys.c.key == key))
        ).scalar_one_or_none()


@postgres_only
def test_one_statement_transactions_ready_together_commit_as_one_group_each_with_its_own_row(
    database_url: str,
) -> None:
    async def body(db: Database) -> tuple[list[tuple[str, Any, str | None]], list[Any], list[bool], dict[int, int]]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        keys = [_key(owner["id"], new_id("key")) for _ in range(5)]
        companions = [_row() for _ in range(5)]
        start = asyncio.Event()
        tasks = [
            asyncio.create_task(_claim_with_companion(db, owner["id"], k, c, start))
            for k, c in zip(keys, companions, strict=True)
        ]
        await asyncio.sleep(0.2)  # all five hold a connection and wait
        start.set()
        outcomes = list(await asyncio.gather(*tasks))
        stored = [await _key_id(db, k["key"]) for k in keys]
        present = [await _exists(db, c["id"]) for c in companions]
        return outcomes, stored, present, dict(db._group_commit.sizes)

    outcomes, stored, present, sizes = run(database_url, body)
    assert [o[0] for o in outcomes] == ["won"] * 5 and present == [True] * 5
    assert [o[1] for o in outcomes] == stored  # each member got the id of its own row
    assert max(sizes) > 1  # they went as a group
    assert len({o[2] for o in outcomes}) < 5  # a group is one transaction: its members' rows share a version


@postgres_only
def test_a_member_whose_key_is_taken_fails_alone_and_the_rest_of_its_group_commits(database_url: str) -> None:
    async def body(db: Database) -> tuple[list[str], list[bool], dict[int, int]]:
        owner = _row()
        taken = _key(owner["id"], new_id("key"))
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
            await _INSERT_KEY.execute(conn, taken)
        keys = [_key(owner["id"], new_id("key")) for _ in range(4)] + [dict(taken)]
        companions = [_row() for _ in range(5)]
        start = asyncio.Event()
        tasks = [
            asyncio.create_task(_claim_with_companion(db, owner["id"], k, c, start))
            for k, c in zip(keys, companions, strict=True)
        ]
        await asyncio.sleep(0.2)
        start.set()
        outcomes = [o[0] for o in await asyncio.gather(*tasks)]
        present = [await _exists(db, c["id"]) for c in companions]
        return outcomes, present, dict(db._group_commit.sizes)

    outcomes, present, sizes = run(database_url, body)
    assert outcomes == ["won"] * 4 + ["taken"]
    assert present == [True] * 4 + [False]
    assert max(sizes) > 1


@postgres_only
def test_a_member_whose_guard_fails_raises_row_changed_alone_and_the_rest_of_its_group_commits(
    database_url: str,
) -> None:
    async def body(db: Database) -> tuple[list[str], list[str], dict[int, int]]:
        owners = [_row() for _ in range(4)]
        async with db.write() as conn:
            for owner in owners:
                await _INSERT.execute(conn, owner)
        versions = [await _version(db, o["id"]) for o in owners]
        async with db.write() as conn:  # the last one changes after its version was read
            await _SET_NAME.execute(conn, {"name": "changed meanwhile", "_id": owners[-1]["id"]})
        start = asyncio.Event()

        async def one(owner: dict[str, Any], version: str) -> str:
            async with db.write() as conn:
                await start.wait()
                _GUARDED_RENAME.queue_guarded(conn, {"name": "optimistic", "_id": owner["id"], "_version": version})
            return "applied"

        tasks = [asyncio.create_task(one(o, v)) for o, v in zip(owners, versions, strict=True)]
        await asyncio.sleep(0.2)
        start.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        outcomes = ["changed" if isinstance(r, RowChanged) else str(r) for r in results]
        return outcomes, [await _name(db, o["id"]) for o in owners], dict(db._group_commit.sizes)

    outcomes, names, sizes = run(database_url, body)
    assert outcomes == ["applied"] * 3 + ["changed"]
    assert names == ["optimistic"] * 3 + ["changed meanwhile"]
    assert max(sizes) > 1


@postgres_only
def test_a_group_whose_round_trip_breaks_leaves_every_member_failed_and_retries_none(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a group is sent, a failure that is not the server's answer (here the connection resets) means the
    outcome is unknown: no member is re-run (it may have committed); the followers see CommitOutcomeUnknown."""

    async def broken(self: Any, query: str, args: Any, **kwargs: Any) -> Any:
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(asyncpg.Connection, "fetchmany", broken)

    async def body(db: Database) -> tuple[list[str], list[bool], dict[int, int]]:
        owner = _row()
        async with db.write() as conn:
            await _INSERT.execute(conn, owner)
        rows = [_row() for _ in range(4)]
        start = asyncio.Event()

        async def one(row: dict[str, Any]) -> str:
            async with db.write() as conn:
                await start.wait()
                await _INSERT.execute(conn, row)
                await insert_unique(
                    conn, idempotency_keys, _key(owner["id"], new_id("key")), on_id=lambda _id: None, taken=_Taken
                )
            return "committed"

        tasks = [asyncio.create_task(one(r)) for r in rows]
        await asyncio.sleep(0.2)
        start.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return (
            sorted(type(r).__name__ for r in results),
            [await _exists(db, r["id"]) for r in rows],
            dict(db._group_commit.sizes),
        )

    kinds, present, sizes = run(database_url, body)
    assert sizes.get(4) == 1
    assert kinds == ["CommitOutcomeUnknown"] * 3 + ["ConnectionResetError"]
    assert present == [False] * 4  # nothing was sent, and nothing was re-sent
