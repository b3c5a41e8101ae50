"""Who may pay with a vaulted PaymentMethod (Stripe's reuse rules), over HTTP on SQLite and PostgreSQL: a card
attached to no customer pays once, an attached one only for its customer, a detached one never again; and of
concurrent confirmations with one single-use card exactly one reaches the processor."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from tests.conftest import Merchant
from tests.integration.api._support import stripe_error
from tests.integration.vault._support import publishable, tokenize

pytestmark = pytest.mark.db


def _card(merchant: Merchant, number: str = "4242424242424242") -> str:
    with publishable(merchant) as pk:
        return str(tokenize(pk, number)["id"])


def _pay(merchant: Merchant, pm: str, **extra: Any) -> httpx2.Response:
    return merchant.post(
        "/v1/payment_intents", {"amount": 1500, "currency": "usd", "payment_method": pm, "confirm": "true", **extra}
    )


def _authorizations(merchant: Merchant, intent: dict[str, Any]) -> int:
    return len(merchant.server.gateway.sandbox.operations_of("authorize", intent["latest_charge"]))


def test_a_card_attached_to_no_customer_pays_once_and_is_then_refused(merchant: Merchant) -> None:
    pm = _card(merchant)
    first = _pay(merchant, pm)
    assert first.status_code == 200 and first.json()["status"] == "succeeded"
    err = stripe_error(_pay(merchant, pm), 400, param="payment_method")
    assert err["type"] == "invalid_request_error" and "may not be used again" in err["message"]
    # refused at creation too, and when an intent created without it is confirmed with it
    stripe_error(
        merchant.post("/v1/payment_intents", {"amount": 100, "currency": "usd", "payment_method": pm}),
        400,
        param="payment_method",
    )
    later = merchant.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()
    stripe_error(
        merchant.post(f"/v1/payment_intents/{later['id']}/confirm", {"payment_method": pm}), 400, param="payment_method"
    )
    # nothing of the refused confirmation was written: the intent still waits for a payment method
    after = merchant.get(f"/v1/payment_intents/{later['id']}").json()
    assert after["status"] == "requires_payment_method" and after["latest_charge"] is None
    # and a card used this way may not be attached to a customer afterwards
    cus = merchant.post("/v1/customers", {}).json()["id"]
    stripe_error(
        merchant.post(f"/v1/payment_methods/{pm}/attach", {"customer": cus}), 400, "payment_method_unexpected_state"
    )


def test_the_intent_that_used_a_card_may_confirm_with_it_again_after_a_decline(merchant: Merchant) -> None:
    pm = _card(merchant, "4000000000000002")  # declined by the sandbox processor
    intent = merchant.post("/v1/payment_intents", {"amount": 700, "currency": "usd", "payment_method": pm}).json()
    declined = merchant.post(f"/v1/payment_intents/{intent['id']}/confirm", {})
    stripe_error(declined, 402, "card_declined")
    again = merchant.post(f"/v1/payment_intents/{intent['id']}/confirm", {"payment_method": pm})
    stripe_error(again, 402, "card_declined")  # it reached the processor again; no reuse error
    stripe_error(_pay(merchant, pm), 400, param="payment_method")  # another intent may not


def test_a_card_attached_to_a_customer_pays_only_for_that_customer(merchant: Merchant) -> None:
    cus = merchant.post("/v1/customers", {}).json()["id"]
    other = merchant.post("/v1/customers", {}).json()["id"]
    pm = _card(merchant)
    merchant.post(f"/v1/payment_methods/{pm}/attach", {"customer": cus}).raise_for_status()
    for _ in range(2):  # reusable
        assert _pay(merchant, pm, customer=cus).json()["status"] == "succeeded"
    missing = stripe_error(_pay(merchant, pm), 400, param="payment_method")
    assert cus in missing["message"]
    stripe_error(_pay(merchant, pm, customer=other), 400, param="payment_method")
    # an intent of another customer may not be given the card by an update
    theirs = merchant.post("/v1/payment_intents", {"amount": 100, "currency": "usd", "customer": other}).json()
    given = merchant.post(f"/v1/payment_intents/{theirs['id']}", {"payment_method": pm})
    stripe_error(given, 400, param="payment_method")
    assert merchant.get(f"/v1/payment_intents/{theirs['id']}").json()["payment_method"] is None
    # an intent without a customer may not be given the card by an update either
    bare = merchant.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()
    given = merchant.post(f"/v1/payment_intents/{bare['id']}", {"payment_method": pm})
    stripe_error(given, 400, param="payment_method")


def test_a_detached_card_is_never_used_or_attached_again(merchant: Merchant) -> None:
    cus = merchant.post("/v1/customers", {}).json()["id"]
    pm = _card(merchant)
    merchant.post(f"/v1/payment_methods/{pm}/attach", {"customer": cus}).raise_for_status()
    merchant.post(f"/v1/payment_methods/{pm}/detach").raise_for_status()
    stripe_error(_pay(merchant, pm), 400, param="payment_method")
    stripe_error(_pay(merchant, pm, customer=cus), 400, param="payment_method")
    stripe_error(
        merchant.post(f"/v1/payment_methods/{pm}/attach", {"customer": cus}), 400, "payment_method_unexpected_state"
    )
    # deleting a customer detaches its cards the same way
    gone = merchant.post("/v1/customers", {}).json()["id"]
    saved = _card(merchant)
    merchant.post(f"/v1/payment_methods/{saved}/attach", {"customer": gone}).raise_for_status()
    merchant.http.delete(f"/v1/customers/{gone}").raise_for_status()
    stripe_error(_pay(merchant, saved), 400, param="payment_method")


def test_sandbox_test_tokens_stay_reusable(merchant: Merchant) -> None:
    for _ in range(3):
        assert _pay(merchant, "pm_card_visa").json()["status"] == "succeeded"


def test_of_concurrent_confirmations_with_one_single_use_card_exactly_one_reaches_the_processor(
    merchant: Merchant,
) -> None:
    pm = _card(merchant)
    intents = [
        merchant.post("/v1/payment_intents", {"amount": 2500, "currency": "usd", "payment_method": pm}).json()
        for _ in range(12)
    ]

    async def fire() -> list[httpx2.Response]:
        limits = httpx2.Limits(max_connections=len(intents))
        async with httpx2.AsyncClient(
            base_url=merchant.server.base_url, auth=(merchant.secret_key, ""), timeout=60, limits=limits
        ) as client:
            return list(await asyncio.gather(*(client.post(f"/v1/payment_intents/{i['id']}/confirm") for i in intents)))

    responses = asyncio.run(fire())
    won = [r.json() for r in responses if r.status_code == 200]
    assert len(won) == 1, [(r.status_code, r.text[:200]) for r in responses]
    assert won[0]["status"] == "succeeded" and _authorizations(merchant, won[0]) == 1
    for r in responses:
        if r.status_code != 200:
            # refused by the rule, or told to retry while the winner held a lock; never a second authorization
            assert r.status_code in (400, 409), r.text
            if r.status_code == 400:
                assert r.json()["error"]["param"] == "payment_method"
    for intent in intents:
        now = merchant.get(f"/v1/payment_intents/{intent['id']}").json()
        if now["id"] != won[0]["id"]:
            assert now["status"] == "requires_confirmation" and now["latest_charge"] is None
