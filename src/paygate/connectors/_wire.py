"""Small wire helpers shared by the HTTP connectors (JSON decoding, form encoding, 5xx classification)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from paygate.connectors.errors import OutcomeUnknown, ProcessorProtocolError, ProcessorUnavailable

__all__ = ["dumps", "form_encode", "loads_object", "raise_for_rejected_call", "raise_for_server_error"]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads_object(body: bytes) -> dict[str, Any]:
    """Decode a JSON object body; anything else means we cannot know what happened."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProcessorProtocolError("processor answered a body that is not JSON") from exc
    if not isinstance(value, dict):
        raise ProcessorProtocolError("processor answered JSON that is not an object")
    return value


def form_encode(params: Mapping[str, Any], prefix: str = "") -> str:
    """Stripe-style nested form encoding: ``{"a": {"b": 1}}`` → ``a[b]=1``; ``None`` values are skipped."""
    parts: list[str] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            nested = form_encode(value, name)
            if nested:
                parts.append(nested)
        elif isinstance(value, bool):
            parts.append(f"{quote(name, safe='[]')}={'true' if value else 'false'}")
        else:
            parts.append(f"{quote(name, safe='[]')}={quote(str(value), safe='')}")
    return "&".join(parts)


def raise_for_server_error(status: int, *, not_processed: bool, what: str) -> None:
    """Map a 5xx: ``ProcessorUnavailable`` when the processor signalled it did not process the request (or the
    status is 503, "not accepting requests"), ``OutcomeUnknown`` otherwise (502/504 from a proxy may come after
    the request was forwarded)."""
    if status < 500:
        return
    if not_processed or status == 503:
        raise ProcessorUnavailable(f"{what}: processor answered {status} before accepting the request")
    raise OutcomeUnknown(f"{what}: processor answered {status}; the outcome is unknown")


def raise_for_rejected_call(status: int, what: str) -> None:
    """401 / 403 (credentials refused) and 429 (rate limited) are answered before any processing."""
    if status in (401, 403, 429):
        raise ProcessorUnavailable(f"{what}: processor refused the call with {status} before processing it")
