"""The official stripe SDK, pointed at paygate, gets Stripe's objects, list envelopes, errors and idempotency."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import Merchant

pytestmark = pytest.mark.db


def test_create_confirm_automatic_capture_succeeds(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "metadata": {"order_id": "42"}}
    )
    assert pi.object == "payment_intent"
    assert pi.status == "requires_payment_method"
    assert pi.livemode is False
    assert pi.metadata.to_dict() == {"order_id": "42"}
    confirmed = merchant.stripe.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert confirmed.amount_received == 2000
    assert confirmed.latest_charge and confirmed.latest_charge.startswith("ch_")


def test_create_with_confirm_true_in_one_call(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={"amount": 1500, "currency": "eur", "payment_method": "pm_card_mastercard", "confirm": True}
    )
    assert pi.status == "succeeded"
    assert pi.currency == "eur"


def test_manual_capture_partial_amount(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": "pm_card_amex",
            "confirm": True,
        }
    )
    assert pi.status == "requires_capture"
    assert pi.amount_capturable == 5000
    captured = merchant.stripe.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 3000})
    assert captured.status == "succeeded"
    assert captured.amount_received == 3000
    assert captured.amount_capturable == 0


def test_cancel_uncaptured_payment_voids_it(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    canceled = merchant.stripe.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    assert canceled.canceled_at is not None
    assert [op.type for op in merchant.server.gateway.sandbox.operations_of("void")]


def test_update_and_retrieve(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    updated = merchant.stripe.v1.payment_intents.update(
        pi.id, params={"amount": 1200, "description": "two mugs", "metadata": {"sku": "mug"}}
    )
    assert updated.amount == 1200
    again = merchant.stripe.v1.payment_intents.retrieve(pi.id)
    assert again.description == "two mugs"
    assert again.metadata.to_dict() == {"sku": "mug"}


def test_decline_raises_card_error_and_intent_returns_to_requires_payment_method(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"})
    with pytest.raises(stripe.CardError) as info:
        merchant.stripe.v1.payment_intents.confirm(
            pi.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    assert info.value.code == "card_declined"
    assert info.value.error is not None
    assert info.value.error.decline_code == "insufficient_funds"
    after = merchant.stripe.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error is not None
    assert after.last_payment_error.decline_code == "insufficient_funds"
    # and the customer can try again with another card
    retried = merchant.stripe.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
    assert retried.status == "succeeded"


def test_expired_card_decline_code(merchant: Merchant) -> None:
    with pytest.raises(stripe.CardError) as info:
        merchant.stripe.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedExpiredCard",
                "confirm": True,
            }
        )
    assert info.value.code == "expired_card"


def test_authentication_required_returns_requires_action_with_redirect(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": "https://shop.example/return",
        }
    )
    assert pi.status == "requires_action"
    assert pi.next_action is not None
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.example/return"


def test_missing_object_raises_invalid_request_resource_missing(merchant: Merchant) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        merchant.stripe.v1.payment_intents.retrieve("pi_doesnotexist")
    assert info.value.code == "resource_missing"
    assert info.value.http_status == 404


def test_idempotency_key_reuse_with_other_parameters_raises_idempotency_error(merchant: Merchant) -> None:
    opts = {"idempotency_key": "order-7"}
    first = merchant.stripe.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}, options=opts)
    same = merchant.stripe.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"}, options=opts)
    assert same.id == first.id
    with pytest.raises(stripe.IdempotencyError):
        merchant.stripe.v1.payment_intents.create(params={"amount": 9999, "currency": "usd"}, options=opts)


def test_list_auto_pagination_walks_every_intent_newest_first(merchant: Merchant) -> None:
    created = [
        merchant.stripe.v1.payment_intents.create(params={"amount": 100 + i, "currency": "usd"}).id for i in range(7)
    ]
    page = merchant.stripe.v1.payment_intents.list(params={"limit": 3})
    assert page.object == "list"
    assert page.has_more is True
    assert len(page.data) == 3
    walked = [pi.id for pi in page.auto_paging_iter()]
    assert walked == list(reversed(created))


def test_refunds_create_retrieve_list(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={"amount": 3000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    r1 = merchant.stripe.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000, "reason": "duplicate"})
    assert r1.object == "refund"
    assert r1.status == "succeeded"
    assert r1.amount == 1000
    r2 = merchant.stripe.v1.refunds.create(params={"charge": pi.latest_charge})  # the rest
    assert r2.amount == 2000
    assert merchant.stripe.v1.refunds.retrieve(r1.id).reason == "duplicate"
    listed = merchant.stripe.v1.refunds.list(params={"payment_intent": pi.id})
    assert [r.id for r in listed.data] == [r2.id, r1.id]
    with pytest.raises(stripe.InvalidRequestError) as info:
        merchant.stripe.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1})
    assert info.value.code == "charge_already_refunded"


def test_events_record_each_state_change(merchant: Merchant) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={"amount": 3000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    merchant.stripe.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    types = [e.type for e in merchant.stripe.v1.events.list(params={"limit": 100}).auto_paging_iter()]
    for expected in (
        "payment_intent.created",
        "payment_intent.succeeded",
        "charge.succeeded",
        "refund.created",
        "charge.refunded",
    ):
        assert expected in types
    succeeded = merchant.stripe.v1.events.list(params={"type": "payment_intent.succeeded"}).data[0]
    assert succeeded.data.object["id"] == pi.id
    assert merchant.stripe.v1.events.retrieve(succeeded.id).id == succeeded.id


def test_wrong_key_raises_authentication_error(merchant: Merchant) -> None:
    client = stripe.StripeClient(
        "sk_test_not_a_real_key_000000000", base_addresses={"api": merchant.server.base_url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        client.v1.payment_intents.list()


def test_publishable_key_gets_permission_error(merchant: Merchant) -> None:
    client = stripe.StripeClient(
        merchant.publishable_key, base_addresses={"api": merchant.server.base_url}, max_network_retries=0
    )
    with pytest.raises(stripe.PermissionError):
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})


@pytest.mark.parametrize(("outcome", "status", "redirect_status"), [
    ("approve", "succeeded", "succeeded"),
    ("fail", "requires_payment_method", "failed"),
])  # fmt: skip
def test_sandbox_3ds_challenge_completes_or_fails_and_returns_to_return_url(
    merchant: Merchant, outcome: str, status: str, redirect_status: str
) -> None:
    pi = merchant.stripe.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "payment_method": "pm_card_authenticationRequired",
                "confirm": True, "return_url": "https://shop.example/done?order=7"}
    )  # fmt: skip
    url = pi.next_action.redirect_to_url.url
    page = merchant.http.get(url)
    assert page.status_code == 200
    assert "3-D Secure" in page.text
    done = merchant.http.post(url, data={"outcome": outcome}, follow_redirects=False)
    assert done.status_code == 303
    location = done.headers["location"]
    assert location.startswith("https://shop.example/done?order=7&payment_intent=" + pi.id)
    assert f"redirect_status={redirect_status}" in location
    assert merchant.stripe.v1.payment_intents.retrieve(pi.id).status == status
