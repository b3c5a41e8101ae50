"""Create and confirm claim their Idempotency-Key in their first write transaction (one transaction fewer per
payment): Stripe's semantics must be exactly those of a key claimed up front."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from sqlalchemy import func, select

from paygate.db.tables import idempotency_keys, payment_intents
from tests.conftest import Merchant

pytestmark = pytest.mark.db

CARD = {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def _count(merchant: Merchant, table: object, **where: object) -> int:
    async def go() -> int:
        t = table
        stmt = select(func.count()).select_from(t)  # type: ignore[arg-type]
        for column, value in where.items():
            stmt = stmt.where(t.c[column] == value)  # type: ignore[attr-defined]
        async with merchant.server.gateway.db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    return merchant.server.call(go())


def test_an_error_raised_before_anything_is_written_is_stored_and_replayed(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "missing-pm"}
    body = {**CARD, "payment_method": "pm_does_not_exist"}
    first = merchant.post("/v1/payment_intents", body, headers=h)
    second = merchant.post("/v1/payment_intents", body, headers=h)
    assert first.status_code == second.status_code == 404
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert merchant.post("/v1/payment_intents", CARD, headers=h).json()["error"]["type"] == "idempotency_error"


def test_the_key_row_is_written_with_the_payment_in_one_transaction(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "one-txn"}
    pi = merchant.post("/v1/payment_intents", CARD, headers=h).json()
    assert pi["status"] == "succeeded"
    assert _count(merchant, idempotency_keys, merchant_id=merchant.id, key="one-txn", state="finished") == 1


def test_concurrent_confirms_with_one_key_confirm_once(merchant: Merchant) -> None:
    pi = merchant.post("/v1/payment_intents", {"amount": "900", "currency": "usd"}).json()
    path = f"/v1/payment_intents/{pi['id']}/confirm"

    async def fire() -> list[httpx2.Response]:
        async with httpx2.AsyncClient(
            base_url=merchant.server.base_url, auth=(merchant.secret_key, ""), timeout=60
        ) as client:
            calls = [
                client.post(path, data={"payment_method": "pm_card_visa"}, headers={"Idempotency-Key": "cc"})
                for _ in range(12)
            ]
            return list(await asyncio.gather(*calls))

    responses = asyncio.run(fire())
    ok = [r for r in responses if r.status_code == 200]
    assert ok and all(r.status_code in (200, 409) for r in responses), [
        (r.status_code, r.text[:200]) for r in responses
    ]
    assert len({r.json()["latest_charge"] for r in ok}) == 1  # one authorization, replayed to the others
    charge = ok[0].json()["latest_charge"]
    assert len(merchant.server.gateway.sandbox.operations_of("authorize", charge)) == 1
    assert _count(merchant, payment_intents, id=pi["id"], status="succeeded") == 1
