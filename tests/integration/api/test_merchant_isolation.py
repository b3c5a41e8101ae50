"""Tenant isolation: another merchant's objects are indistinguishable from missing ones (404 resource_missing,
never 403, never a leak in a list) and cannot be changed through any endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Merchant
from tests.integration.api._support import ok, stripe_error, succeeded_intent, uncaptured_intent

pytestmark = pytest.mark.db


@pytest.fixture
def a_objects(merchant: Merchant) -> dict[str, Any]:
    """Merchant A's objects: a captured payment with a partial refund, an authorization, and an event."""
    paid = succeeded_intent(merchant, amount=3000)
    refund = ok(merchant.post("/v1/refunds", {"payment_intent": paid["id"], "amount": "500"}))
    held = uncaptured_intent(merchant, amount=4000)
    event = ok(merchant.get("/v1/events", params={"limit": "1"}))["data"][0]
    return {"paid": paid, "refund": refund, "held": held, "event": event}


def _missing(resp: Any, *, param: str | None = None) -> None:
    err = stripe_error(resp, 404, "resource_missing", param=param)
    assert err["type"] == "invalid_request_error"


def test_other_merchant_cannot_retrieve_an_intent(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    _missing(other_merchant.get(f"/v1/payment_intents/{a_objects['paid']['id']}"))
    _missing(other_merchant.get(f"/v1/payment_intents/{a_objects['held']['id']}", params={"expand[]": "latest_charge"}))


def test_other_merchant_cannot_update_an_intent(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    held = a_objects["held"]
    _missing(other_merchant.post(f"/v1/payment_intents/{held['id']}", {"description": "mine now", "metadata[x]": "1"}))
    after = ok(merchant.get(f"/v1/payment_intents/{held['id']}"))
    assert (after["description"], after["metadata"]) == (None, {})


def test_other_merchant_cannot_confirm_an_intent(merchant: Merchant, other_merchant: Merchant) -> None:
    pi = ok(merchant.post("/v1/payment_intents", {"amount": "2000", "currency": "usd"}))
    _missing(other_merchant.post(f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": "pm_card_visa"}))
    assert ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))["status"] == "requires_payment_method"


def test_other_merchant_cannot_capture_an_intent(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    held = a_objects["held"]
    _missing(other_merchant.post(f"/v1/payment_intents/{held['id']}/capture"))
    after = ok(merchant.get(f"/v1/payment_intents/{held['id']}"))
    assert (after["status"], after["amount_received"]) == ("requires_capture", 0)


def test_other_merchant_cannot_cancel_an_intent(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    held = a_objects["held"]
    _missing(other_merchant.post(f"/v1/payment_intents/{held['id']}/cancel"))
    assert ok(merchant.get(f"/v1/payment_intents/{held['id']}"))["status"] == "requires_capture"


def test_other_merchant_cannot_refund_an_intent(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    paid = a_objects["paid"]
    _missing(other_merchant.post("/v1/refunds", {"payment_intent": paid["id"]}), param="payment_intent")
    _missing(other_merchant.post("/v1/refunds", {"charge": paid["latest_charge"]}), param="charge")
    after = ok(merchant.get(f"/v1/payment_intents/{paid['id']}"))
    assert after["amount_received"] == 3000
    refunded = ok(merchant.get("/v1/refunds", params={"payment_intent": paid["id"]}))["data"]
    assert [r["id"] for r in refunded] == [a_objects["refund"]["id"]]


def test_other_merchant_cannot_retrieve_or_update_a_refund(
    merchant: Merchant, other_merchant: Merchant, a_objects: Any
) -> None:
    refund_id = a_objects["refund"]["id"]
    _missing(other_merchant.get(f"/v1/refunds/{refund_id}"))
    _missing(other_merchant.post(f"/v1/refunds/{refund_id}", {"metadata[x]": "1"}))
    assert ok(merchant.get(f"/v1/refunds/{refund_id}"))["metadata"] == {}


def test_other_merchant_cannot_retrieve_an_event(merchant: Merchant, other_merchant: Merchant, a_objects: Any) -> None:
    _missing(other_merchant.get(f"/v1/events/{a_objects['event']['id']}"))
    assert ok(merchant.get(f"/v1/events/{a_objects['event']['id']}"))["id"] == a_objects["event"]["id"]


def test_other_merchant_lists_never_show_foreign_objects(
    merchant: Merchant, other_merchant: Merchant, a_objects: Any
) -> None:
    own = succeeded_intent(other_merchant)
    a_ids = {a_objects["paid"]["id"], a_objects["held"]["id"], a_objects["refund"]["id"], a_objects["event"]["id"]}
    b_intents = ok(other_merchant.get("/v1/payment_intents", params={"limit": "100"}))["data"]
    assert [pi["id"] for pi in b_intents] == [own["id"]]
    assert ok(other_merchant.get("/v1/refunds", params={"limit": "100"}))["data"] == []
    b_events = ok(other_merchant.get("/v1/events", params={"limit": "100"}))["data"]
    assert b_events
    assert all(e["data"]["object"].get("id") not in a_ids for e in b_events)
    assert not {e["id"] for e in b_events} & a_ids
    # filters naming A's objects find nothing either
    filtered = other_merchant.get("/v1/refunds", params={"payment_intent": a_objects["paid"]["id"]})
    assert ok(filtered)["data"] == []


def test_foreign_and_missing_ids_get_the_same_answer(
    merchant: Merchant, other_merchant: Merchant, a_objects: Any
) -> None:
    foreign = other_merchant.get(f"/v1/payment_intents/{a_objects['paid']['id']}").json()["error"]
    missing = other_merchant.get("/v1/payment_intents/pi_000000000000000000000000").json()["error"]
    assert set(foreign) == set(missing)
    assert (foreign["code"], foreign["type"]) == (missing["code"], missing["type"])
