"""Live mode without a configured processor: confirming is a clear 400 and writes nothing; plain objects work
and live and test mode never see each other's objects."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import Merchant
from tests.integration.api._support import ok, stripe_error

pytestmark = pytest.mark.db


@pytest.fixture
def live(merchant: Merchant) -> Iterator[httpx2.Client]:
    client = httpx2.Client(base_url=merchant.server.base_url, auth=(merchant.live_secret_key, ""), timeout=30)
    yield client
    client.close()


def test_live_key_create_and_confirm_is_a_clear_400_and_leaves_nothing_behind(live: httpx2.Client) -> None:
    resp = live.post(
        "/v1/payment_intents",
        data={"amount": "2000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    err = stripe_error(resp, 400, "processor_not_configured")
    assert err["type"] == "invalid_request_error"
    assert "live mode" in err["message"]
    assert ok(live.get("/v1/payment_intents"))["data"] == []
    assert ok(live.get("/v1/events"))["data"] == []


def test_live_confirm_of_existing_intent_leaves_it_confirmable(live: httpx2.Client) -> None:
    pi = ok(live.post("/v1/payment_intents", data={"amount": "2000", "currency": "usd"}))
    resp = live.post(f"/v1/payment_intents/{pi['id']}/confirm", data={"payment_method": "pm_card_visa"})
    stripe_error(resp, 400, "processor_not_configured")
    after = ok(live.get(f"/v1/payment_intents/{pi['id']}"))
    assert after["status"] == "requires_payment_method"
    assert (after["latest_charge"], after["payment_method"], after["amount_received"]) == (None, None, 0)
    assert ok(live.post(f"/v1/payment_intents/{pi['id']}/cancel"))["status"] == "canceled"


def test_live_create_without_confirm_works_and_lists_only_in_live_mode(merchant: Merchant, live: httpx2.Client) -> None:
    test_pi = ok(merchant.post("/v1/payment_intents", {"amount": "1000", "currency": "usd"}))
    live_pi = ok(live.post("/v1/payment_intents", data={"amount": "2000", "currency": "usd", "metadata[m]": "1"}))
    assert live_pi["livemode"] is True
    assert test_pi["livemode"] is False
    assert live_pi["status"] == "requires_payment_method"
    assert [pi["id"] for pi in ok(live.get("/v1/payment_intents"))["data"]] == [live_pi["id"]]
    assert [pi["id"] for pi in ok(merchant.get("/v1/payment_intents"))["data"]] == [test_pi["id"]]
    live_events = ok(live.get("/v1/events"))["data"]
    assert [e["type"] for e in live_events] == ["payment_intent.created"]
    assert live_events[0]["livemode"] is True
    assert all(e["livemode"] is False for e in ok(merchant.get("/v1/events"))["data"])


def test_modes_cannot_reach_each_other_s_objects(merchant: Merchant, live: httpx2.Client) -> None:
    live_pi = ok(live.post("/v1/payment_intents", data={"amount": "2000", "currency": "usd"}))
    test_pi = ok(merchant.post("/v1/payment_intents", {"amount": "2000", "currency": "usd"}))
    stripe_error(merchant.get(f"/v1/payment_intents/{live_pi['id']}"), 404, "resource_missing")
    stripe_error(merchant.post(f"/v1/payment_intents/{live_pi['id']}/cancel"), 404, "resource_missing")
    stripe_error(live.get(f"/v1/payment_intents/{test_pi['id']}"), 404, "resource_missing")
    stripe_error(live.get("/v1/payment_intents", params={"starting_after": test_pi["id"]}), 404, "resource_missing")
    assert ok(live.get(f"/v1/payment_intents/{live_pi['id']}"))["status"] == "requires_payment_method"
