"""Stripe's wire format over real HTTP: form-encoded and JSON bodies, strict parameter validation with Stripe's
error codes, metadata merge/unset semantics, and ``expand``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Merchant
from tests.integration.api._support import create_intent, ok, stripe_error, succeeded_intent

pytestmark = pytest.mark.db


def _post_json(m: Merchant, path: str, body: dict[str, Any]) -> Any:
    return m.http.post(path, json=body)


def test_form_encoded_create_with_nested_metadata(merchant: Merchant) -> None:
    pi = ok(
        merchant.post(
            "/v1/payment_intents",
            {"amount": "1234", "currency": "EUR", "metadata[order_id]": "42", "metadata[note]": "a & b"},
        )
    )
    assert (pi["amount"], pi["currency"]) == (1234, "eur")
    assert pi["metadata"] == {"order_id": "42", "note": "a & b"}


def test_metadata_keys_that_look_like_list_indices_are_kept_as_keys(merchant: Merchant) -> None:
    created = ok(merchant.post("/v1/payment_intents", {"amount": "1234", "currency": "eur", "metadata[0]": "zero"}))
    assert created["metadata"] == {"0": "zero"}
    updated = ok(merchant.post(f"/v1/payment_intents/{created['id']}", {"metadata[12]": "twelve", "metadata[0]": ""}))
    assert updated["metadata"] == {"12": "twelve"}


def test_json_create_with_nested_metadata_and_boolean(merchant: Merchant) -> None:
    pi = ok(
        _post_json(
            merchant,
            "/v1/payment_intents",
            {
                "amount": 1500,
                "currency": "usd",
                "metadata": {"order_id": "7"},
                "payment_method": "pm_card_visa",
                "confirm": True,
            },
        )
    )
    assert pi["status"] == "succeeded"
    assert pi["metadata"] == {"order_id": "7"}
    assert pi["amount_received"] == 1500


def test_json_and_form_create_the_same_object(merchant: Merchant) -> None:
    params = {"amount": 999, "currency": "gbp", "description": "same", "capture_method": "manual"}
    via_form = ok(merchant.post("/v1/payment_intents", {k: str(v) for k, v in params.items()}))
    via_json = ok(_post_json(merchant, "/v1/payment_intents", params))
    skip = {"id", "client_secret", "created"}
    assert {k: v for k, v in via_form.items() if k not in skip} == {k: v for k, v in via_json.items() if k not in skip}


def test_unknown_parameter_is_parameter_unknown(merchant: Merchant) -> None:
    resp = merchant.post("/v1/payment_intents", {"amount": "2000", "currency": "usd", "colour": "red"})
    err = stripe_error(resp, 400, "parameter_unknown", param="colour")
    assert err["type"] == "invalid_request_error"


def test_unknown_nested_parameter_is_named_in_bracket_form(merchant: Merchant) -> None:
    resp = merchant.post(
        "/v1/payment_intents",
        {
            "amount": "2000",
            "currency": "usd",
            "automatic_payment_methods[enabled]": "true",
            "automatic_payment_methods[x]": "1",
        },
    )
    stripe_error(resp, 400, "parameter_unknown", param="automatic_payment_methods[x]")


def test_unknown_parameter_on_update_and_capture(merchant: Merchant) -> None:
    pi = create_intent(merchant)
    stripe_error(
        merchant.post(f"/v1/payment_intents/{pi['id']}", {"nope": "1"}), 400, "parameter_unknown", param="nope"
    )
    stripe_error(
        merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount": "1"}),
        400,
        "parameter_unknown",
        param="amount",
    )


def test_missing_amount_is_parameter_missing(merchant: Merchant) -> None:
    err = stripe_error(
        merchant.post("/v1/payment_intents", {"currency": "usd"}), 400, "parameter_missing", param="amount"
    )
    assert "amount" in err["message"]


def test_missing_currency_in_json_is_parameter_missing(merchant: Merchant) -> None:
    stripe_error(
        _post_json(merchant, "/v1/payment_intents", {"amount": 100}), 400, "parameter_missing", param="currency"
    )


def test_empty_body_names_the_first_missing_parameter(merchant: Merchant) -> None:
    stripe_error(merchant.http.post("/v1/payment_intents"), 400, "parameter_missing", param="amount")


@pytest.mark.parametrize("amount", [10.5, 10.0, True, "10", "abc", -5, 0, None])
def test_non_integer_or_non_positive_json_amount_is_rejected(merchant: Merchant, amount: object) -> None:
    resp = _post_json(merchant, "/v1/payment_intents", {"amount": amount, "currency": "usd"})
    if amount == "10":  # a digit string is the form encoding of an integer; below the minimum, though
        stripe_error(resp, 400, "amount_too_small", param="amount")
    else:
        stripe_error(resp, 400, param="amount")


@pytest.mark.parametrize("amount", ["10.5", "1e3", "1,000", "", " ", "-100", "0", "0x10"])
def test_non_integer_form_amount_is_rejected(merchant: Merchant, amount: str) -> None:
    stripe_error(merchant.post("/v1/payment_intents", {"amount": amount, "currency": "usd"}), 400, param="amount")


@pytest.mark.parametrize(("amount", "currency"), [(49, "usd"), (29, "gbp"), (49, "jpy"), (199, "kwd")])
def test_amount_below_the_currency_minimum_is_amount_too_small(merchant: Merchant, amount: int, currency: str) -> None:
    resp = merchant.post("/v1/payment_intents", {"amount": str(amount), "currency": currency})
    err = stripe_error(resp, 400, "amount_too_small", param="amount")
    assert currency in err["message"]
    assert ok(merchant.post("/v1/payment_intents", {"amount": str(amount + 1), "currency": currency}))["amount"] == (
        amount + 1
    )


def test_amount_above_the_maximum_is_amount_too_large(merchant: Merchant) -> None:
    stripe_error(
        merchant.post("/v1/payment_intents", {"amount": "100000000", "currency": "usd"}),
        400,
        "amount_too_large",
        param="amount",
    )


def test_update_to_an_amount_below_the_minimum_is_rejected(merchant: Merchant) -> None:
    pi = create_intent(merchant)
    stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}", {"amount": "10"}), 400, "amount_too_small")
    assert ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))["amount"] == 2000


@pytest.mark.parametrize("currency", ["xyz", "us", "dollars", ""])
def test_invalid_currency_is_rejected(merchant: Merchant, currency: str) -> None:
    err = stripe_error(merchant.post("/v1/payment_intents", {"amount": "2000", "currency": currency}), 400)
    assert err["param"] == "currency"


def test_invalid_currency_in_json_is_rejected(merchant: Merchant) -> None:
    stripe_error(_post_json(merchant, "/v1/payment_intents", {"amount": 2000, "currency": 840}), 400, param="currency")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount": "2000", "currency": "usd", "confirm": "yes"}, "confirm"),
        ({"amount": "2000", "currency": "usd", "capture_method": "later"}, "capture_method"),
        ({"amount": "2000", "currency": "usd", "metadata[" + "k" * 41 + "]": "v"}, "metadata"),
        ({"amount": "2000", "currency": "usd", "metadata[a]": "v" * 501}, "metadata"),
    ],
)
def test_invalid_parameter_values_are_400(merchant: Merchant, body: dict[str, object], param: str | None) -> None:
    stripe_error(merchant.post("/v1/payment_intents", body), 400, param=param)


def test_malformed_and_conflicting_form_keys_are_400_not_500(merchant: Merchant) -> None:
    raw = {"content-type": "application/x-www-form-urlencoded"}
    for body in (
        "amount=2000&currency=usd&metadata[a=1",
        "amount=2000&currency=usd&metadata=x&metadata[a]=1",
        "amount=2000&currency=usd&expand[0]=x&expand[a]=y",
        "amount=2000&currency=usd&expand[5000]=latest_charge",
    ):
        stripe_error(merchant.http.post("/v1/payment_intents", content=body, headers=raw), 400)


def test_malformed_json_is_400(merchant: Merchant) -> None:
    headers = {"content-type": "application/json"}
    stripe_error(merchant.http.post("/v1/payment_intents", content=b"{amount: 1", headers=headers), 400)
    stripe_error(merchant.http.post("/v1/payment_intents", content=b"[1, 2]", headers=headers), 400)


def test_metadata_key_is_unset_by_an_empty_value_on_update(merchant: Merchant) -> None:
    pi = create_intent(merchant, **{"metadata[keep]": "1", "metadata[drop]": "2"})
    updated = ok(merchant.post(f"/v1/payment_intents/{pi['id']}", {"metadata[drop]": "", "metadata[new]": "3"}))
    assert updated["metadata"] == {"keep": "1", "new": "3"}
    assert ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))["metadata"] == {"keep": "1", "new": "3"}


def test_all_metadata_is_unset_by_an_empty_metadata_on_update(merchant: Merchant) -> None:
    pi = create_intent(merchant, **{"metadata[a]": "1", "metadata[b]": "2"})
    assert ok(merchant.post(f"/v1/payment_intents/{pi['id']}", {"metadata": ""}))["metadata"] == {}


def test_expand_latest_charge_returns_a_charge_object(merchant: Merchant) -> None:
    pi = ok(
        merchant.post(
            "/v1/payment_intents",
            {
                "amount": "2500",
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
                "expand[]": "latest_charge",
            },
        )
    )
    charge = pi["latest_charge"]
    assert isinstance(charge, dict)
    assert charge["object"] == "charge"
    assert charge["id"].startswith("ch_")
    assert (charge["amount"], charge["amount_captured"], charge["status"]) == (2500, 2500, "succeeded")
    assert charge["payment_intent"] == pi["id"]
    again = ok(merchant.get(f"/v1/payment_intents/{pi['id']}", params={"expand[0]": "latest_charge"}))
    assert again["latest_charge"]["id"] == charge["id"]
    plain = ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))
    assert plain["latest_charge"] == charge["id"]


def test_expand_on_an_intent_without_a_charge_leaves_null(merchant: Merchant) -> None:
    pi = ok(merchant.post("/v1/payment_intents", {"amount": "2500", "currency": "usd", "expand[]": "latest_charge"}))
    assert pi["latest_charge"] is None


def test_unsupported_expand_is_400(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    stripe_error(merchant.get(f"/v1/payment_intents/{pi['id']}", params={"expand[]": "customer"}), 400, param="expand")
    resp = merchant.post("/v1/payment_intents", {"amount": "2000", "currency": "usd", "expand[]": "payment_method"})
    stripe_error(resp, 400, param="expand")


def test_unknown_query_parameter_on_retrieve_is_400(merchant: Merchant) -> None:
    pi = create_intent(merchant)
    stripe_error(merchant.get(f"/v1/payment_intents/{pi['id']}", params={"foo": "1"}), 400, "parameter_unknown")


def test_post_parameters_may_also_come_in_the_query_string(merchant: Merchant) -> None:
    pi = ok(merchant.http.post("/v1/payment_intents?amount=3000&currency=usd"))
    assert pi["amount"] == 3000
