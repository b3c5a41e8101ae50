"""Reading a payment's intent and attempt together, as the transaction after a processor call does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import insert

from paygate.db.engine import Database
from paygate.db.tables import merchants
from paygate.kit.errors import ResourceMissing
from paygate.kit.ids import new_id
from paygate.merchants.context import AuthContext
from paygate.payments import repository as repo

pytestmark = pytest.mark.db


async def _payment(db: Database) -> tuple[AuthContext, dict[str, Any], dict[str, Any]]:
    ctx = AuthContext(new_id("acct"), False, "secret")
    intent = repo.new_intent_row(ctx, new_id("pi"), amount=1234, currency="usd", status="processing", now=5)
    attempt = {
        "id": new_id("ch"),
        "intent_id": intent["id"],
        "merchant_id": ctx.merchant_id,
        "livemode": False,
        "processor": "sandbox",
        "processor_account": "acct_sbx",
        "amount": 1234,
        "currency": "usd",
        "capture": True,
        "status": "pending",
        "amount_captured": 0,
        "payment_method": "pm_card_visa",
        "decline_code": None,
        "failure_code": None,
        "failure_message": None,
        "processor_reference": None,
        "next_sync_at": 65,
        "sync_attempts": 0,
        "created": 5,
        "updated": 5,
    }
    async with db.write() as conn:
        merchant = {"id": ctx.merchant_id, "name": "m", "raw_card_access": False, "settings": "{}", "created": 1}
        await conn.execute(insert(merchants).values(**merchant))
        await repo.insert_intent(conn, intent)
        await repo.insert_attempt(conn, attempt)
    return ctx, intent, attempt


def test_the_locked_read_of_both_rows_returns_what_the_two_reads_return(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url, pool_size=2)
        try:
            ctx, intent, attempt = await _payment(db)
            async with db.write() as conn:
                both = await repo.get_intent_and_attempt(conn, ctx, intent["id"], attempt["id"], lock=True)
                apart = (await repo.get_intent(conn, ctx, intent["id"]), await repo.get_attempt(conn, attempt["id"]))
                missing_attempt = await repo.get_intent_and_attempt(conn, ctx, intent["id"], "ch_nope", lock=True)
                with pytest.raises(ResourceMissing):
                    await repo.get_intent_and_attempt(conn, ctx, "pi_nope", attempt["id"], lock=True)
                other = AuthContext(new_id("acct"), False, "secret")
                with pytest.raises(ResourceMissing):  # another merchant's intent is a missing one
                    await repo.get_intent_and_attempt(conn, other, intent["id"], attempt["id"], lock=True)
            assert both == apart
            assert both[0]["amount"] == 1234 and both[1] is not None and both[1]["capture"] is True
            assert missing_attempt == (apart[0], None)
        finally:
            await db.dispose()

    asyncio.run(go())


def test_a_second_locked_read_waits_for_the_first_transaction(database_url: str) -> None:
    """Two transactions take the same payment's rows: the second sees the first's update, never the state
    before it (on SQLite the write lock serializes them; on PostgreSQL the row locks do)."""

    async def go() -> list[str]:
        db = Database(database_url, pool_size=2)
        try:
            ctx, intent, attempt = await _payment(db)
            seen: list[str] = []

            async def one(status: str, pause: float) -> None:
                async with db.write() as conn:
                    _, a = await repo.get_intent_and_attempt(conn, ctx, intent["id"], attempt["id"], lock=True)
                    assert a is not None
                    seen.append(a["status"])
                    await asyncio.sleep(pause)
                    await repo.update_attempt(conn, a, {"status": status})

            await asyncio.gather(one("authorized", 0.2), one("captured", 0))
            return seen
        finally:
            await db.dispose()

    assert asyncio.run(go()) == ["pending", "authorized"]
