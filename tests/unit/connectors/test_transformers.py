"""Vendor status / decline mapping per connector; anything unknown maps to PENDING."""

from __future__ import annotations

import pytest

from paygate.connectors.adyen import transformers as adyen
from paygate.connectors.base import PaymentStatus, RefundStatus
from paygate.connectors.simulator import transformers as native
from paygate.connectors.stripe import transformers as stripe


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("requires_capture", PaymentStatus.AUTHORIZED),
        ("succeeded", PaymentStatus.CAPTURED),
        ("canceled", PaymentStatus.VOIDED),
        ("requires_action", PaymentStatus.REQUIRES_ACTION),
        ("processing", PaymentStatus.PENDING),
        ("requires_payment_method", PaymentStatus.PENDING),
        ("something_new", PaymentStatus.PENDING),
    ],
)
def test_stripe_intent_statuses(status: str, expected: PaymentStatus) -> None:
    assert stripe.intent_result({"id": "pi_1", "status": status}).status is expected


def test_stripe_failed_intent_carries_decline_data() -> None:
    result = stripe.intent_result(
        {
            "id": "pi_1",
            "status": "requires_payment_method",
            "last_payment_error": {"code": "card_declined", "decline_code": "stolen_card", "message": "declined"},
        }
    )
    assert (result.status, result.error_code, result.decline_code) == (
        PaymentStatus.FAILED,
        "card_declined",
        "stolen_card",
    )
    processing = stripe.intent_result(
        {"status": "requires_payment_method", "last_payment_error": {"code": "processing_error"}}
    )
    assert processing.retryable_elsewhere


def test_stripe_refund_statuses() -> None:
    assert stripe.refund_result({"id": "re_1", "status": "succeeded"}).status is RefundStatus.SUCCEEDED
    assert stripe.refund_result({"id": "re_1", "status": "weird"}).status is RefundStatus.PENDING


@pytest.mark.parametrize(
    ("code", "raw", "expected"),
    [
        ("2", None, ("card_declined", "generic_decline", False)),
        ("12", None, ("card_declined", "insufficient_funds", False)),
        ("5", "41 : Lost card", ("card_declined", "lost_card", False)),
        ("5", "43 : Stolen card", ("card_declined", "stolen_card", False)),
        ("6", None, ("expired_card", "expired_card", False)),
        ("24", None, ("incorrect_cvc", "incorrect_cvc", False)),
        ("4", None, ("processing_error", "processing_error", True)),
        ("999", None, ("card_declined", "generic_decline", False)),
    ],
)
def test_adyen_refusal_codes(code: str, raw: str | None, expected: tuple[str, str, bool]) -> None:
    assert adyen.decline_for(code, raw) == expected


@pytest.mark.parametrize(
    ("result_code", "capture", "expected"),
    [
        ("Authorised", True, PaymentStatus.CAPTURED),
        ("Authorised", False, PaymentStatus.AUTHORIZED),
        ("Refused", False, PaymentStatus.FAILED),
        ("RedirectShopper", False, PaymentStatus.REQUIRES_ACTION),
        ("Received", False, PaymentStatus.PENDING),
        ("SomethingElse", False, PaymentStatus.PENDING),
    ],
)
def test_adyen_result_codes(result_code: str, capture: bool, expected: PaymentStatus) -> None:
    assert adyen.payment_result({"pspReference": "P", "resultCode": result_code}, capture=capture).status is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("authorized", PaymentStatus.AUTHORIZED),
        ("captured", PaymentStatus.CAPTURED),
        ("voided", PaymentStatus.VOIDED),
        ("failed", PaymentStatus.FAILED),
        ("requires_action", PaymentStatus.REQUIRES_ACTION),
        ("mystery", PaymentStatus.PENDING),
    ],
)
def test_native_statuses(status: str, expected: PaymentStatus) -> None:
    assert native.payment_result({"id": "txn_1", "status": status}).status is expected


def test_native_decline_fields_only_on_failure() -> None:
    failed = native.payment_result({"status": "failed", "decline_code": "lost_card", "error_code": "card_declined"})
    ok = native.payment_result({"status": "authorized", "decline_code": "lost_card"})
    assert failed.decline_code == "lost_card" and ok.decline_code is None
