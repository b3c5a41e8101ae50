"""Scrub card data and credentials from anything a connector might log.

Contract: the output of every function here contains no 13-19 digit run (a possible PAN: only its last four
digits survive, as ``****4242``), no value of a sensitive field (``number``, ``cvc``/``cvv``, expiry-free
security codes, api keys, secrets, passwords) in JSON, form-encoded or ``key=value`` text, and no value of a
sensitive header (``Authorization``, ``X-API-Key``, ``Cookie`` …). Redaction is over-eager by design: a
13-digit order number is masked too. This module imports nothing from paygate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact_headers", "redact_text", "redact_value"]

REDACTED = "[REDACTED]"

_SENSITIVE_KEYS = (
    "number",
    "cvc",
    "cvv",
    "cvv2",
    "cvc2",
    "security_code",
    "securitycode",
    "encryptedcardnumber",
    "encryptedsecuritycode",
    "api_key",
    "apikey",
    "secret",
    "password",
    "authorization",
    "client_secret",
    "x-api-key",
)
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie", "stripe-signature"}
)

# digit runs of 13-19 digits, optionally grouped by single spaces or dashes (4242 4242 4242 4242)
_PAN = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_KEYS = "|".join(re.escape(k) for k in _SENSITIVE_KEYS)
# "cvc": "123"  /  "cvc": 123
_JSON_FIELD = re.compile(rf'("(?:[A-Za-z_\-]*?)(?:{_KEYS})"\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d+)', re.IGNORECASE)
# cvc=123 / card[cvc]=123 / payment_method_data%5Bcard%5D%5Bnumber%5D=4242…  (form bodies, query strings)
_FORM_FIELD = re.compile(rf"((?:^|[&?\s;,])[^=&\s]*?(?:{_KEYS})(?:\]|%5D)?=)([^&\s;,]*)", re.IGNORECASE)
# Bearer sk_test_… anywhere in free text
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_SECRET_KEY = re.compile(r"\b(sk|rk|pk|whsec)_(test|live)?_?[A-Za-z0-9]{6,}")


def _mask_pan(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "****" + digits[-4:]


def redact_text(text: str) -> str:
    """Redact a body or message (JSON, form-encoded, or free text)."""
    text = _JSON_FIELD.sub(lambda m: m.group(1) + '"' + REDACTED + '"', text)
    text = _FORM_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    text = _SECRET_KEY.sub(REDACTED, text)
    return _PAN.sub(_mask_pan, text)


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Copy of ``headers`` with sensitive header values replaced."""
    if not headers:
        return {}
    return {k: (REDACTED if k.lower() in _SENSITIVE_HEADERS else redact_text(v)) for k, v in headers.items()}


def _is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    return any(lowered.endswith(k) or lowered == k for k in _SENSITIVE_KEYS)


def redact_value(value: Any) -> Any:
    """Recursively redact a decoded JSON-like structure (dicts, lists, strings)."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _is_sensitive_key(k) else redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and 13 <= len(str(abs(value))) <= 19:
        return "****" + str(value)[-4:]
    return value
