"""Card fingerprints: keyed, merchant-scoped, one-way (PCI DSS 3.5.1.1).

``fingerprint = base62(HMAC-SHA256(key = vault fingerprint secret,
                                   msg = "paygate/fingerprint/v1" | len | merchant_id | len | PAN))[:16]``

* Keyed: without the secret nobody can test a guessed PAN against a fingerprint (a plain hash of a PAN is
  brute- forceable: a BIN and a Luhn digit leave ~10^9 candidates). PCI DSS 3.5.1.1 requires keyed hashes over
  the *entire* PAN with managed keys, which this is.
* Merchant scope: the same card has the same fingerprint for one merchant (duplicate-card detection, Stripe's
  ``card.fingerprint`` semantics) and unrelated fingerprints across merchants, so merchants cannot correlate
  customers with each other.
* 16 base62 characters keep ~95 bits of the MAC: collisions are negligible for any realistic card count.
* The secret is separate from the KEKs (key separation) and must be at least 32 bytes. Rotating it changes
  every fingerprint; it is therefore long-lived and protected like a KEK (settings ``Secret``, 0600 file or
  HSM-derived).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from paygate.kit.secret import Secret

__all__ = ["FINGERPRINT_LENGTH", "card_fingerprint", "idempotency_view"]

FINGERPRINT_LENGTH = 16
MIN_SECRET_BYTES = 32
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DOMAIN = b"paygate/fingerprint/v1"


def _secret_bytes(secret: bytes | Secret) -> bytes:
    raw = secret.reveal().encode() if isinstance(secret, Secret) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"fingerprint secret must be at least {MIN_SECRET_BYTES} bytes")
    return raw


def card_fingerprint(number: str, *, secret: bytes | Secret, merchant_id: str) -> str:
    """Fingerprint of a card ``number`` (spaces/dashes ignored) for ``merchant_id``: 16 chars of
    ``[0-9A-Za-z]``.

    Deterministic for the same (secret, merchant, PAN); different when any of them differs.
    """
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("card number must contain digits only")
    if not merchant_id:
        raise ValueError("merchant_id is required")
    merchant = merchant_id.encode()
    msg = b"".join(
        (_DOMAIN, len(merchant).to_bytes(2, "big"), merchant, len(digits).to_bytes(1, "big"), digits.encode())
    )
    value = int.from_bytes(hmac.new(_secret_bytes(secret), msg, hashlib.sha256).digest(), "big")
    out = []
    for _ in range(FINGERPRINT_LENGTH):
        value, rem = divmod(value, 62)
        out.append(_ALPHABET[rem])
    return "".join(out)


def idempotency_view(raw: dict[str, Any], secret: Secret) -> dict[str, Any]:
    """``raw`` with every ``card`` object's ``number`` / ``cvc`` replaced by an HMAC under the vault secret
    (same card → same value, so a changed card under one key still counts as different parameters)."""

    def mac(value: Any) -> str:
        digest = hmac.new(secret.reveal().encode(), f"idem/{value}".encode(), hashlib.sha256).hexdigest()
        return "hmac:" + digest[:32]

    def walk(node: Any, parent: str) -> Any:
        if isinstance(node, dict):
            return {k: mac(v) if parent == "card" and k in ("number", "cvc") else walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, parent) for v in node]
        return node

    return dict(walk(raw, ""))
