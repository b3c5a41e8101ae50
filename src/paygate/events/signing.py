"""Signing merchant webhook deliveries with two schemes at once, from one secret.

The secret is ``whsec_`` + base64 of 32 random bytes, which both schemes accept as is:

* Stripe: ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`` where the key is the whole
  secret string (what ``stripe.Webhook.construct_event`` computes).
* Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256(
  base64-decoded key, "{id}.{t}.{body}")>`` (what the ``standardwebhooks`` libraries verify).

While a rolled secret's overlap lasts, every secret passed signs: Stripe gets one ``v1=`` per secret and
Standard Webhooks one space-separated ``v1,…`` per secret; receivers accept any that matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = ["SECRET_PREFIX", "new_secret", "signature_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` + base64(32 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _stripe_v1(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _standard_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers for one delivery attempt of ``body`` (the exact bytes sent), signed with every secret given."""
    if not secrets_:
        raise ValueError("at least one secret is required")
    stripe_sig = ",".join([f"t={timestamp}", *(f"v1={_stripe_v1(s, timestamp, body)}" for s in secrets_)])
    return {
        "Stripe-Signature": stripe_sig,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(_standard_v1(s, msg_id, timestamp, body) for s in secrets_),
    }
