"""Adyen standard notifications, HMAC-signed per item.

Each ``NotificationRequestItem`` carries ``additionalData.hmacSignature`` = base64(HMAC-SHA256(hex-decoded key,
``pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success``)),
missing fields as empty strings. A body verifies only when it has at least one item and every item's signature
matches (constant-time). The scheme signs no timestamp, so no freshness window applies; replays are harmless
because the event id (``pspReference:eventCode:success``) dedupes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import orjson

from paygate.connectors.adyen import transformers
from paygate.connectors.base import ConnectorEvent, InboundWebhook
from paygate.connectors.errors import ProcessorProtocolError

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["items", "parse", "signature", "verify"]


def signature(item: dict[str, Any], key: bytes) -> str:
    amount = item.get("amount") if isinstance(item.get("amount"), dict) else {}
    assert isinstance(amount, dict)
    fields = [
        item.get("pspReference"),
        item.get("originalReference"),
        item.get("merchantAccountCode"),
        item.get("merchantReference"),
        amount.get("value"),
        amount.get("currency"),
        item.get("eventCode"),
        item.get("success"),
    ]
    payload = ":".join("" if value is None else str(value) for value in fields)
    return base64.b64encode(hmac.new(key, payload.encode(), hashlib.sha256).digest()).decode()


def items(body: bytes) -> list[dict[str, Any]]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProcessorProtocolError("notification is not JSON") from exc
    raw = parsed.get("notificationItems") if isinstance(parsed, dict) else None
    out: list[dict[str, Any]] = []
    for entry in raw if isinstance(raw, list) else []:
        item = entry.get("NotificationRequestItem") if isinstance(entry, dict) else None
        if isinstance(item, dict):
            out.append(item)
    return out


def verify(hook: InboundWebhook, secret: Secret) -> bool:
    try:
        key = binascii.unhexlify(secret.reveal())
        found = items(hook.body)
    except (binascii.Error, ValueError, ProcessorProtocolError):
        return False
    if not found:
        return False
    ok = True
    for item in found:
        extra = item.get("additionalData") if isinstance(item.get("additionalData"), dict) else {}
        assert isinstance(extra, dict)
        given = extra.get("hmacSignature")
        ok &= isinstance(given, str) and hmac.compare_digest(signature(item, key).encode(), given.encode())
    return ok


def parse(hook: InboundWebhook) -> ConnectorEvent:
    """The first item of the batch (the simulator sends one per request; Adyen rarely batches more)."""
    found = items(hook.body)
    if not found:
        raise ProcessorProtocolError("notification has no items")
    return transformers.event_from_item(found[0])
