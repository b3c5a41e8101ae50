"""The write path under the payment hot path: group commit on SQLite, prebuilt statements sent straight to the
driver, pipelined writes on PostgreSQL. Each test runs its own Database on the session database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from paygate.db import sqlite as sqlite_writer
from paygate.db.engine import Database, after_commit
from paygate.db.prepared import Prepared
from paygate.db.tables import merchants
from paygate.kit.ids import new_id
from tests.support.databases import create_sqlite

pytestmark = pytest.mark.db
T = TypeVar("T")

_INSERT = Prepared(insert(merchants))
_BY_ID = Prepared(select(merchants).where(merchants.c.id == __import__("sqlalchemy").bindparam("_id")))


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
            await _INSERT.execute(conn, row)  # queued on PostgreSQL: must reach the server before the selects
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
        with pytest.raises(IntegrityError):  # on PostgreSQL raised when the pipelined writes go out, at commit
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
