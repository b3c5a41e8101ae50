"""Money invariants under genuinely concurrent HTTP requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from paygate.ledger.service import verify
from tests.conftest import Merchant

pytestmark = pytest.mark.db


async def _fire(
    merchant: Merchant, requests: list[tuple[str, dict[str, Any], dict[str, str]]]
) -> list[httpx2.Response]:
    """Send all requests at once over separate connections and wait for every answer."""
    limits = httpx2.Limits(max_connections=len(requests))
    async with httpx2.AsyncClient(
        base_url=merchant.server.base_url, auth=(merchant.secret_key, ""), timeout=60, limits=limits
    ) as client:
        return list(await asyncio.gather(*(client.post(path, data=data, headers=h) for path, data, h in requests)))


def _ledger_ok(merchant: Merchant) -> None:
    async def go() -> list[str]:
        async with merchant.server.gateway.db.read() as conn:
            return (await verify(conn)).problems

    assert merchant.server.call(go()) == []


def test_fifty_concurrent_posts_with_one_idempotency_key_create_one_payment_and_one_authorization(
    merchant: Merchant,
) -> None:
    body = {"amount": "4200", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
    headers = {"Idempotency-Key": "checkout-4711"}
    responses = asyncio.run(_fire(merchant, [("/v1/payment_intents", body, headers)] * 50))

    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {200, 409}, statuses
    ok = [r.json() for r in responses if r.status_code == 200]
    assert ok, "at least the first request must succeed"
    assert len({pi["id"] for pi in ok}) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "idempotency_key_in_use"

    listed = merchant.get("/v1/payment_intents", params={"limit": 100}).json()["data"]
    assert [pi["id"] for pi in listed] == [ok[0]["id"]]
    attempt_id = ok[0]["latest_charge"]
    assert len(merchant.server.gateway.sandbox.operations_of("authorize", attempt_id)) == 1
    # A later retry with the same key replays the stored answer.
    again = merchant.post("/v1/payment_intents", body, headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == ok[0]


def test_refunds_never_exceed_captured_amount_under_concurrency(merchant: Merchant) -> None:
    pi = merchant.post(
        "/v1/payment_intents",
        {"amount": "10000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    ).json()
    assert pi["status"] == "succeeded"
    # 20 refunds of 700 = 14,000 > 10,000 captured: at most 14 can be accepted.
    reqs = [("/v1/refunds", {"payment_intent": pi["id"], "amount": "700"}, {}) for _ in range(20)]
    responses = asyncio.run(_fire(merchant, reqs))

    accepted = [r.json() for r in responses if r.status_code == 200]
    rejected = [r.json() for r in responses if r.status_code != 200]
    assert sum(r["amount"] for r in accepted if r["status"] == "succeeded") <= 10000
    assert len(accepted) == 14
    for err in rejected:
        assert err["error"]["code"] in ("amount_too_large", "charge_already_refunded", "lock_timeout"), err
    refunds = merchant.get("/v1/refunds", params={"payment_intent": pi["id"], "limit": 100}).json()["data"]
    assert sum(r["amount"] for r in refunds if r["status"] == "succeeded") == 9800
    _ledger_ok(merchant)


def test_concurrent_keyed_refunds_each_claim_their_key_once_and_replay_their_own_answer(merchant: Merchant) -> None:
    """On PostgreSQL their first transactions read the intent unlocked and most find it changed by another's
    reservation: each then decides again on the row read locked, its key claimed by the transaction that
    commits. Whatever path it took, a key answers the same thereafter."""
    pi = merchant.post(
        "/v1/payment_intents",
        {"amount": "5000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    ).json()
    reqs = [
        ("/v1/refunds", {"payment_intent": pi["id"], "amount": "600"}, {"Idempotency-Key": f"refund-{i}"})
        for i in range(12)
    ]
    first = asyncio.run(_fire(merchant, reqs))

    assert sorted(r.status_code for r in first) == [200] * 8 + [400] * 4  # 8 * 600 <= 5,000 < 9 * 600
    again = asyncio.run(_fire(merchant, reqs))
    for before, after in zip(first, again, strict=True):
        assert after.headers["idempotent-replayed"] == "true"
        assert (after.status_code, after.content) == (before.status_code, before.content)
    charge = merchant.get(f"/v1/payment_intents/{pi['id']}", params={"expand[]": "latest_charge"}).json()
    assert charge["latest_charge"]["amount_refunded"] == 4800
    refunds = merchant.get("/v1/refunds", params={"payment_intent": pi["id"], "limit": 100}).json()["data"]
    assert len(refunds) == 8 and sum(r["amount"] for r in refunds) == 4800
    _ledger_ok(merchant)


def test_two_concurrent_captures_exactly_one_succeeds(merchant: Merchant) -> None:
    pi = merchant.post(
        "/v1/payment_intents",
        {"amount": "5000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true",
         "capture_method": "manual"},
    ).json()  # fmt: skip
    assert pi["status"] == "requires_capture"
    path = f"/v1/payment_intents/{pi['id']}/capture"
    responses = asyncio.run(_fire(merchant, [(path, {}, {}), (path, {}, {})]))

    succeeded = [r for r in responses if r.status_code == 200]
    assert len(succeeded) == 1
    loser = next(r for r in responses if r.status_code != 200)
    assert loser.json()["error"]["code"] in ("payment_intent_unexpected_state", "lock_timeout")
    assert len(merchant.server.gateway.sandbox.operations_of("capture", f"{pi['latest_charge']}-capture")) == 1
    final = merchant.get(f"/v1/payment_intents/{pi['id']}").json()
    assert final["status"] == "succeeded"
    assert final["amount_received"] == 5000
    _ledger_ok(merchant)


def test_concurrent_confirms_of_one_intent_authorize_once(merchant: Merchant) -> None:
    pi = merchant.post("/v1/payment_intents", {"amount": "3000", "currency": "usd"}).json()
    path = f"/v1/payment_intents/{pi['id']}/confirm"
    responses = asyncio.run(_fire(merchant, [(path, {"payment_method": "pm_card_visa"}, {})] * 10))

    assert sum(r.status_code == 200 for r in responses) == 1
    final = merchant.get(f"/v1/payment_intents/{pi['id']}").json()
    assert final["status"] == "succeeded"
    events = merchant.get("/v1/events", params={"type": "payment_intent.succeeded", "limit": 100}).json()["data"]
    assert [e["data"]["object"]["id"] for e in events].count(pi["id"]) == 1
    _ledger_ok(merchant)
