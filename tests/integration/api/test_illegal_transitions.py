"""Illegal PaymentIntent transitions are Stripe 400s with the unexpected-state code, never 500s, and they leave
the payment exactly as it was."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import Merchant
from tests.integration.api._support import (
    canceled_intent,
    create_intent,
    ok,
    status_of,
    stripe_error,
    succeeded_intent,
    uncaptured_intent,
)

pytestmark = pytest.mark.db

UNEXPECTED = "payment_intent_unexpected_state"


def test_capture_of_succeeded_intent_returns_unexpected_state_not_500(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    err = stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}/capture"), 400, UNEXPECTED)
    assert err["type"] == "invalid_request_error"
    assert err["payment_intent"] == {"id": pi["id"], "object": "payment_intent", "status": "succeeded"}
    assert "requires_capture" in err["message"]
    after = ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))
    assert (after["status"], after["amount_received"]) == ("succeeded", 2000)


def test_confirm_of_canceled_intent_returns_unexpected_state(merchant: Merchant) -> None:
    pi = canceled_intent(merchant)
    resp = merchant.post(f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": "pm_card_visa"})
    err = stripe_error(resp, 400, UNEXPECTED)
    assert err["type"] == "invalid_request_error"
    assert err["payment_intent"]["status"] == "canceled"
    assert status_of(merchant, pi["id"]) == "canceled"


def test_cancel_of_succeeded_intent_returns_unexpected_state(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    err = stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}/cancel"), 400, UNEXPECTED)
    assert err["type"] == "invalid_request_error"
    assert status_of(merchant, pi["id"]) == "succeeded"


def test_refund_of_uncaptured_intent_returns_charge_not_refundable(merchant: Merchant) -> None:
    pi = uncaptured_intent(merchant)
    err = stripe_error(
        merchant.post("/v1/refunds", {"payment_intent": pi["id"]}), 400, "charge_not_refundable", param="payment_intent"
    )
    assert err["type"] == "invalid_request_error"
    after = ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))
    assert after["status"] == "requires_capture"
    assert after["amount_capturable"] == 2000
    assert ok(merchant.get("/v1/refunds", params={"payment_intent": pi["id"]}))["data"] == []


def test_refund_of_canceled_intent_returns_unexpected_state(merchant: Merchant) -> None:
    pi = canceled_intent(merchant)
    stripe_error(merchant.post("/v1/refunds", {"payment_intent": pi["id"]}), 400, UNEXPECTED)


def test_update_of_succeeded_intent_returns_unexpected_state(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    resp = merchant.post(f"/v1/payment_intents/{pi['id']}", {"amount": 5000, "description": "changed"})
    err = stripe_error(resp, 400, UNEXPECTED)
    assert err["type"] == "invalid_request_error"
    after = ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))
    assert (after["amount"], after["description"]) == (2000, None)


def test_capture_of_intent_without_payment_returns_unexpected_state(merchant: Merchant) -> None:
    pi = create_intent(merchant)
    stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}/capture"), 400, UNEXPECTED)
    assert status_of(merchant, pi["id"]) == "requires_payment_method"


def test_second_cancel_returns_unexpected_state(merchant: Merchant) -> None:
    pi = canceled_intent(merchant)
    stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}/cancel"), 400, UNEXPECTED)


def test_confirm_of_succeeded_intent_does_not_charge_again(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    resp = merchant.post(f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": "pm_card_visa"})
    stripe_error(resp, 400, UNEXPECTED)
    after = ok(merchant.get(f"/v1/payment_intents/{pi['id']}"))
    assert after["latest_charge"] == pi["latest_charge"]
    assert after["amount_received"] == 2000


def test_capture_of_canceled_authorization_returns_unexpected_state(merchant: Merchant) -> None:
    pi = uncaptured_intent(merchant)
    assert ok(merchant.post(f"/v1/payment_intents/{pi['id']}/cancel"))["status"] == "canceled"
    stripe_error(merchant.post(f"/v1/payment_intents/{pi['id']}/capture"), 400, UNEXPECTED)
    assert status_of(merchant, pi["id"]) == "canceled"


def test_illegal_transition_under_idempotency_key_replays_the_same_error(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    headers = {"Idempotency-Key": f"cap-{pi['id']}"}
    first = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", headers=headers)
    second = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", headers=headers)
    stripe_error(first, 400, UNEXPECTED)
    stripe_error(second, 400, UNEXPECTED)
    assert second.json() == first.json()


def test_stripe_sdk_sees_illegal_capture_as_invalid_request_error(merchant: Merchant) -> None:
    pi = succeeded_intent(merchant)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        merchant.stripe.v1.payment_intents.capture(pi["id"])
    assert exc.value.http_status == 400
    assert exc.value.code == UNEXPECTED
