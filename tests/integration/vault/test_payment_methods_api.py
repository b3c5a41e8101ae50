"""POST /v1/payment_methods and paying with vaulted cards, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from paygate.connectors.base import AuthorizeRequest
from tests.conftest import Merchant
from tests.integration.api._support import stripe_error
from tests.integration.vault._support import card_form, enable_raw_card_access, publishable, tokenize


def test_publishable_key_tokenizes_a_card_and_gets_display_data_only(merchant: Merchant) -> None:
    with publishable(merchant) as pk:
        resp = pk.post(
            "/v1/payment_methods",
            data={**card_form("4000002500000003", "123"), "billing_details[name]": "Jo Doe", "metadata[k]": "v"},
        )
    assert resp.status_code == 200, resp.text
    pm = resp.json()
    assert pm["id"].startswith("pm_") and pm["object"] == "payment_method" and pm["type"] == "card"
    card = pm["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == ("visa", "0003", 12, 2034)
    assert card["country"] == "FR" and len(card["fingerprint"]) == 16
    assert pm["billing_details"]["name"] == "Jo Doe" and pm["metadata"] == {"k": "v"}
    assert "4000002500000003" not in resp.text
    assert merchant.get(f"/v1/payment_methods/{pm['id']}").json() == pm


def test_secret_key_may_tokenize_only_with_raw_card_access(merchant: Merchant) -> None:
    denied = merchant.post("/v1/payment_methods", card_form("4242424242424242"))
    stripe_error(denied, 400, "raw_card_data_access_disabled")
    enable_raw_card_access(merchant.server, merchant.id)
    assert tokenize(merchant.http, "4242424242424242")["card"]["last4"] == "4242"


@pytest.mark.parametrize(
    ("form", "code", "param"),
    [
        (card_form("4242424242424241"), "incorrect_number", "card[number]"),
        (card_form("42424242"), "invalid_number", "card[number]"),
        (card_form("4242424242424242", exp_year="2020"), "invalid_expiry_year", "card[exp_year]"),
        (card_form("4242424242424242", exp_month="13"), "invalid_expiry_month", "card[exp_month]"),
        (card_form("4242424242424242", "12"), "invalid_cvc", "card[cvc]"),
        (card_form("378282246310005", "123"), "invalid_cvc", "card[cvc]"),
    ],
)
def test_bad_cards_get_a_402_card_error_naming_the_param(
    merchant: Merchant, form: dict[str, Any], code: str, param: str
) -> None:
    with publishable(merchant) as pk:
        err = stripe_error(pk.post("/v1/payment_methods", data=form), 402, code, param=param)
    assert err["type"] == "card_error"
    assert form.get("card[number]", "") not in err["message"]


def test_same_card_has_the_same_fingerprint_within_a_merchant_only(
    merchant: Merchant, other_merchant: Merchant
) -> None:
    with publishable(merchant) as pk, publishable(other_merchant) as other:
        a = tokenize(pk, "5555555555554444")["card"]["fingerprint"]
        b = tokenize(pk, "5555 5555 5555 4444")["card"]["fingerprint"]
        c = tokenize(pk, "5200828282828210")["card"]["fingerprint"]
        d = tokenize(other, "5555555555554444")["card"]["fingerprint"]
    assert a == b and a != c and a != d


def test_confirming_with_vaulted_cards_succeeds_or_declines_by_card_number(merchant: Merchant) -> None:
    with publishable(merchant) as pk:
        good = tokenize(pk, "4242424242424242")["id"]
        bad = tokenize(pk, "4000000000000002")["id"]
    ok = merchant.post(
        "/v1/payment_intents", {"amount": 1500, "currency": "usd", "payment_method": good, "confirm": "true"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "succeeded" and ok.json()["payment_method"] == good
    pi = merchant.post("/v1/payment_intents", {"amount": 1500, "currency": "usd"}).json()
    declined = merchant.post(f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": bad})
    err = stripe_error(declined, 402, "card_declined")
    assert err["decline_code"] == "generic_decline"


def test_payment_method_data_tokenizes_inline_and_the_cvc_reaches_only_that_authorization(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    enable_raw_card_access(merchant.server, merchant.id)
    sandbox = merchant.server.gateway.sandbox
    seen: list[tuple[str | None, str | None]] = []
    original = sandbox.authorize

    async def spy(req: AuthorizeRequest, http: Any = None) -> Any:
        seen.append((req.card.number[-4:] if req.card else None, req.card.cvc if req.card else None))
        return await original(req, http)

    monkeypatch.setattr(sandbox, "authorize", spy)
    cus = merchant.post("/v1/customers", {}).json()["id"]
    resp = merchant.post(
        "/v1/payment_intents",
        {
            "amount": 900,
            "currency": "usd",
            "confirm": "true",
            "customer": cus,
            "setup_future_usage": "off_session",
            **card_form("4242424242424242", "737", prefix="payment_method_data"),
        },
    )
    assert resp.status_code == 200, resp.text
    pi = resp.json()
    assert pi["status"] == "succeeded" and pi["payment_method"].startswith("pm_")
    again = merchant.post(
        "/v1/payment_intents",
        {"amount": 900, "currency": "usd", "customer": cus, "payment_method": pi["payment_method"], "confirm": "true"},
    )
    assert again.json()["status"] == "succeeded"
    assert seen == [("4242", "737"), ("4242", None)]  # a saved card used later carries no CVC


def test_invalid_inline_card_is_a_card_error_under_payment_method_data(merchant: Merchant) -> None:
    enable_raw_card_access(merchant.server, merchant.id)
    resp = merchant.post(
        "/v1/payment_intents",
        {
            "amount": 900,
            "currency": "usd",
            "confirm": "true",
            **card_form("4242424242424241", prefix="payment_method_data"),
        },
    )
    stripe_error(resp, 402, "incorrect_number", param="payment_method_data[card][number]")


def test_another_merchants_payment_method_is_missing(merchant: Merchant, other_merchant: Merchant) -> None:
    with publishable(other_merchant) as pk:
        foreign = tokenize(pk, "4242424242424242")["id"]
    resp = merchant.post("/v1/payment_intents", {"amount": 100, "currency": "usd", "payment_method": foreign})
    stripe_error(resp, 404, "resource_missing", param="payment_method")
    stripe_error(merchant.get(f"/v1/payment_methods/{foreign}"), 404, "resource_missing")
    ok = merchant.post(
        "/v1/payment_intents", {"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
    )
    assert ok.json()["status"] == "succeeded"  # sandbox test tokens keep working
