"""Timestamped HMAC-SHA256 webhook signatures (``t=<unix>,v1=<hex>`` over ``"{t}.{body}"``).

Shared by the native simulator scheme and Stripe's ``Stripe-Signature``. Contract of :func:`verify_timestamped`:
true only when some ``v1`` value equals HMAC-SHA256(secret, f"{t}.{body}") (constant-time comparison) and the
timestamp is within ``tolerance`` seconds of ``now``; any malformed header is simply false.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["DEFAULT_TOLERANCE", "sign_timestamped", "verify_timestamped"]

DEFAULT_TOLERANCE = 300


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    payload = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def sign_timestamped(secret: str, timestamp: int, body: bytes) -> str:
    """The header value ``t=…,v1=…``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_timestamped(
    header: str | None, body: bytes, secret: str, *, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> bool:
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body)
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(expected.encode(), candidate.encode())
    return ok
