"""Webhook verification per dialect: valid, tampered body, wrong secret, stale timestamp."""

from __future__ import annotations

import orjson

from paygate.connectors.adyen import AdyenConnector
from paygate.connectors.adyen.webhooks import signature
from paygate.connectors.base import InboundWebhook, PaymentStatus
from paygate.connectors.signing import sign_timestamped
from paygate.connectors.simulator import SimulatorConnector
from paygate.connectors.stripe import StripeConnector
from paygate.kit.secret import Secret

SECRET = "whsec_unit"
NOW = 1_700_000_000


def _timestamped(header: str, body: bytes, *, t: int = NOW, secret: str = SECRET) -> InboundWebhook:
    return InboundWebhook(body=body, headers={header: sign_timestamped(secret, t, body)}, received_at=NOW)


STRIPE_BODY = orjson.dumps(
    {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "created": NOW,
        "data": {"object": {"id": "pi_1", "status": "succeeded", "amount": 500, "currency": "usd", "metadata": {}}},
    }
)
NATIVE_BODY = orjson.dumps(
    {
        "id": "evt_2",
        "type": "payment.captured",
        "created": NOW,
        "data": {"object": "payment", "id": "txn_1", "status": "captured"},
    }
)


def test_stripe_signature_valid_tampered_wrong_secret_and_stale() -> None:
    stripe = StripeConnector()
    good = _timestamped("stripe-signature", STRIPE_BODY)
    assert stripe.verify_webhook(good, Secret(SECRET))
    tampered = InboundWebhook(STRIPE_BODY.replace(b"500", b"501"), good.headers, NOW)
    assert not stripe.verify_webhook(tampered, Secret(SECRET))
    assert not stripe.verify_webhook(good, Secret("whsec_other"))
    assert not stripe.verify_webhook(_timestamped("stripe-signature", STRIPE_BODY, t=NOW - 301), Secret(SECRET))
    assert stripe.verify_webhook(_timestamped("stripe-signature", STRIPE_BODY, t=NOW - 299), Secret(SECRET))
    event = stripe.parse_webhook(good)
    assert (event.event_id, event.processor_reference, event.payment_status) == (
        "evt_1",
        "pi_1",
        PaymentStatus.CAPTURED,
    )


def test_native_signature_valid_tampered_wrong_secret_and_stale() -> None:
    native = SimulatorConnector()
    good = _timestamped("paygate-sim-signature", NATIVE_BODY)
    assert native.verify_webhook(good, Secret(SECRET))
    assert not native.verify_webhook(InboundWebhook(NATIVE_BODY + b" ", good.headers, NOW), Secret(SECRET))
    assert not native.verify_webhook(good, Secret("nope"))
    assert not native.verify_webhook(_timestamped("paygate-sim-signature", NATIVE_BODY, t=NOW + 400), Secret(SECRET))
    assert not native.verify_webhook(InboundWebhook(NATIVE_BODY, {}, NOW), Secret(SECRET))


def _adyen_body(key_hex: str, **overrides: str) -> bytes:
    item = {
        "amount": {"value": 1000, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "merchantAccountCode": "M",
        "merchantReference": "att_1",
        "pspReference": "ABCDEF1234567890",
        "success": "true",
        "eventDate": "2024-01-01T00:00:00+00:00",
    }
    item["additionalData"] = {"hmacSignature": signature(item, bytes.fromhex(key_hex))}
    item.update(overrides)
    return orjson.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})


def test_adyen_item_hmac_valid_tampered_and_wrong_key() -> None:
    adyen = AdyenConnector()
    key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    good = InboundWebhook(_adyen_body(key), {}, NOW)
    assert adyen.verify_webhook(good, Secret(key))
    assert not adyen.verify_webhook(InboundWebhook(_adyen_body(key, success="false"), {}, NOW), Secret(key))
    assert not adyen.verify_webhook(good, Secret("ff" * 32))
    assert not adyen.verify_webhook(good, Secret("not-hex"))
    event = adyen.parse_webhook(good)
    assert event.event_id == "ABCDEF1234567890:AUTHORISATION:true"
    assert event.payment_status is PaymentStatus.AUTHORIZED
