"""Stripe webhook signatures: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>``.

A signature is valid when any ``v1`` matches (constant-time) and ``t`` is within 300 s of arrival.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paygate.connectors import signing
from paygate.connectors._wire import loads_object
from paygate.connectors.base import ConnectorEvent, InboundWebhook
from paygate.connectors.stripe import transformers

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["SIGNATURE_HEADER", "parse", "verify"]

SIGNATURE_HEADER = "stripe-signature"


def verify(hook: InboundWebhook, secret: Secret, *, tolerance: int = signing.DEFAULT_TOLERANCE) -> bool:
    header = hook.headers.get(SIGNATURE_HEADER) or hook.headers.get("Stripe-Signature")
    return signing.verify_timestamped(header, hook.body, secret.reveal(), now=hook.received_at, tolerance=tolerance)


def parse(hook: InboundWebhook) -> ConnectorEvent:
    return transformers.event_from_webhook(loads_object(hook.body))
