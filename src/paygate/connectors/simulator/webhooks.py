"""The simulator's native webhook scheme.

Header ``Paygate-Sim-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "{t}.{raw body}")>``; the receiver
accepts a timestamp within 300 s of when the webhook arrived (``InboundWebhook.received_at``). Body::

    {"id": "evt_…", "type": "payment.authorized", "created": 1700000000, "data": {<payment|refund|dispute>}}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paygate.connectors import signing
from paygate.connectors._wire import loads_object
from paygate.connectors.base import ConnectorEvent, InboundWebhook
from paygate.connectors.simulator import transformers

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["SIGNATURE_HEADER", "parse", "verify"]

SIGNATURE_HEADER = "paygate-sim-signature"


def verify(hook: InboundWebhook, secret: Secret, *, tolerance: int = signing.DEFAULT_TOLERANCE) -> bool:
    header = hook.headers.get(SIGNATURE_HEADER) or hook.headers.get(SIGNATURE_HEADER.title())
    return signing.verify_timestamped(header, hook.body, secret.reveal(), now=hook.received_at, tolerance=tolerance)


def parse(hook: InboundWebhook) -> ConnectorEvent:
    return transformers.event_from_webhook(loads_object(hook.body))
