"""The one redactor for logs, error messages, exception text and events (PCI DSS 3.3.1, 3.4.1, 10.2 hygiene).

:func:`redact` is the single entry point; the structlog processor :func:`redact_event_dict` and any exception
filter call it. It removes two kinds of secrets:

1. **PAN-like digit runs anywhere in text**: 13-19 digits, optionally grouped by single spaces or dashes
   (``4242 4242 4242 4242``, ``4242-4242-4242-4242``), that pass the Luhn check. Runs of 15-19 digits keep
   the first 6 and last 4 digits (``424242******4242``, ``4242 42** **** 4242``: the most PCI DSS 3.4.1
   allows to display); 13-14 digit runs keep only the last 4 (``*********4242``), because 6 + 4 would leave
   too few digits hidden. Masking keeps the text's length and separators. When several overlapping spans of
   a grouped run pass Luhn (a date or CVC next to a PAN), all of them are masked. Every Luhn-valid run is
   masked whatever its leading digit: a 13-19 digit number that happens to pass Luhn (about 1 in 10 -- e.g.
   a microsecond timestamp) is masked too. Over-redaction is the safe failure. Digits glued to letters
   (``pi_4242...``) count as a run: a PAN inside an id is still a PAN.
2. **Values of sensitive fields**: ``cvc``/``cvv``(2), ``security_code``, ``number`` (Stripe's
   ``card[number]``), ``encrypted*`` (Adyen's client-side-encrypted card fields), ``password``, ``*secret``,
   ``api_key``, ``authorization`` -- as dict keys at any depth, and inside strings as form fields
   (``card[cvc]=123``, ``card%5Bcvc%5D=123``), JSON (``"cvc": "123"``), Python reprs (``'cvc': '123'``) and
   headers (``Authorization: Bearer sk_...``). The value becomes ``[REDACTED]``.
   ``exp_month``/``exp_year``/``name`` are not sensitive on their own and are kept.
3. **Credentials in free text**: a ``Bearer``/``Basic`` token anywhere, and API or webhook secrets by their
   prefix (``sk_test_…``, ``rk_live_…``, ``whsec_…``; publishable ``pk_`` keys too), become ``[REDACTED]``.

Speed: most log lines contain neither a 13-digit run nor a sensitive key word. Each string is first checked
with three cheap regexes (``\\d`` density, a keyword and a credential-prefix alternation) and returned
unchanged when all miss.

Limits: a PAN split by other characters (dots, slashes) or spread over several fields is not detected; binary
(``bytes``) values are left alone -- decode before logging.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any, TypeVar

from paygate.kit.luhn import luhn_valid

__all__ = ["REDACTED", "is_sensitive_key", "mask_pan", "redact", "redact_event_dict", "redact_text"]

REDACTED = "[REDACTED]"

T = TypeVar("T")

# Cheap prechecks.
_HAS_DIGIT_RUN = re.compile(r"\d\d\d\d")
_HAS_KEYWORD = re.compile(r"cvc|cvv|number|passw|secret|api.?key|authorization|security|encrypted", re.IGNORECASE)
_HAS_CREDENTIAL = re.compile(r"bearer|basic|sk_|rk_|pk_|whsec_", re.IGNORECASE)

# The last segment of a key that names a secret: anything *ending* in cvc/cvv/password/secret/api
# key/authorization, but only ``number`` / ``card_number`` exactly (``page_number`` and ``phone_number`` are
# not card data).
_SEGMENT = (
    r"(?:[\w.-]*?(?:cvc2?|cvv2?|security[_-]?code|passw(?:or)?d|secret|api[_-]?key|authorization)"
    r"|(?:card[_-]?)?number|encrypted[\w-]*)"
)

# A run of digit groups joined by single spaces or dashes; not preceded by a digit.
_DIGIT_RUN = re.compile(r"(?<!\d)\d+(?:[ -]\d+)*")

# key (optionally quoted; optionally nested form brackets, raw or %-encoded) + ':' or '=' + value (quoted or
# bare).
_FIELD = re.compile(
    r"""
    (?P<key>
        (?P<kq>["']?)
        (?<![\w\[\]%.-])
        (?:[\w.-]*(?:\[|\]|%5B|%5D))*
        """
    + _SEGMENT
    + r"""
        (?:\]|%5D)?
        (?P=kq)
    )
    (?P<sep>\s*[:=]\s*)
    (?:
        (?P<vq>["'])(?P<qval>(?:\\.|(?!(?P=vq)).)*)(?P=vq)
      | (?P<scheme>(?:bearer|basic|token|digest)\s+)?(?P<bval>[^\s&,;}\])"'<>]+)
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)

_SENSITIVE_KEY = re.compile(_SEGMENT, re.IGNORECASE)

# A bearer or basic token anywhere; a secret (or publishable) API key or a webhook secret by its prefix.
_BEARER = re.compile(r"\b(bearer|basic)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_API_SECRET = re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9+/=]{6,}")


def is_sensitive_key(key: str) -> bool:
    """True for keys whose value must never be logged: ``cvc``, ``card[number]``, ``x_api_key``,
    ``client_secret``...

    For bracketed form keys (``payment_method_data[card][cvc]``) the last segment decides.
    """
    last = key.rstrip("]").rsplit("[", 1)[-1] if key.endswith("]") else key
    return _SENSITIVE_KEY.fullmatch(last) is not None


def mask_pan(digits: str) -> str:
    """Mask a digits-only PAN: first 6 + last 4 for 15+ digits, last 4 only for shorter numbers."""
    head = 6 if len(digits) >= 15 else 0
    return digits[:head] + "*" * (len(digits) - head - 4) + digits[-4:]


def _mask_run(match: re.Match[str]) -> str:
    """Mask every Luhn-valid 13-19 digit span of whole groups inside one run of digit groups.

    Every candidate span is masked (the union of their hidden middles), so a real PAN stays hidden even when
    it touches other digits (a date before it, a CVC after it) that form another Luhn-valid span by chance.
    Output has the input's length and separators; only digits turn into ``*``.
    """
    run = match.group(0)
    digits = run.replace(" ", "").replace("-", "")
    if len(digits) < 13:
        return run
    bounds: list[int] = [0]  # digit offsets where groups start, plus the end
    for group in re.split(r"[ -]", run):
        bounds.append(bounds[-1] + len(group))
    hidden = bytearray(len(digits))
    found = False
    for gi in range(len(bounds) - 1):
        start = bounds[gi]
        for end in bounds[gi + 1 :]:
            length = end - start
            if length > 19:
                break
            if length >= 13 and luhn_valid(digits[start:end]):
                head = 6 if length >= 15 else 0
                hidden[start + head : end - 4] = b"\x01" * (length - head - 4)
                found = True
    if not found:
        return run
    out: list[str] = []
    k = 0
    for ch in run:
        if ch in " -":
            out.append(ch)
        else:
            out.append("*" if hidden[k] else ch)
            k += 1
    return "".join(out)


def _mask_field(match: re.Match[str]) -> str:
    head = match.group("key") + match.group("sep")
    if match.group("vq") is not None:
        quote = match.group("vq")
        return f"{head}{quote}{REDACTED}{quote}"
    return f"{head}{match.group('scheme') or ''}{REDACTED}"


def redact_text(text: str) -> str:
    """Redact PAN-like runs and sensitive ``key=value`` / ``"key": value`` pairs inside one string."""
    if _HAS_KEYWORD.search(text):
        text = _FIELD.sub(_mask_field, text)
    if _HAS_CREDENTIAL.search(text):
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _API_SECRET.sub(REDACTED, text)
    if _HAS_DIGIT_RUN.search(text):
        text = _DIGIT_RUN.sub(_mask_run, text)
    return text


def _redact_int(value: int) -> int | str:
    digits = str(abs(value))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return mask_pan(digits)
    return value


def redact(value: T) -> T:
    """Return a redacted copy of ``value``: strings, dicts (any ``Mapping``), lists, tuples, sets, nested.

    Sensitive keys get ``[REDACTED]`` whatever their value type; strings pass through :func:`redact_text`; an
    ``int`` that looks like a PAN becomes its masked string. Other objects are returned as they are (their
    ``repr`` is not inspected here -- the structlog renderer's output is, when the caller redacts the rendered
    line). The return type is nominally ``T``; containers come back as plain
    ``dict``/``list``/``tuple``/``set``.
    """
    return _redact_any(value)  # type: ignore[no-any-return]


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _redact_int(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_sensitive_key(k) else _redact_any(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact_any(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact_any(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(_redact_any(v) for v in value)
    return value


def redact_event_dict(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact every value of the event dict (including ``event`` and ``exception``).

    Place it after ``format_exc_info`` / ``dict_tracebacks`` (so formatted tracebacks are redacted) and before
    the renderer. Keys such as ``cvc=...`` passed as log kwargs are replaced wholesale.
    """
    for key in list(event_dict):
        value = event_dict[key]
        event_dict[key] = REDACTED if is_sensitive_key(key) else _redact_any(value)
    return event_dict
