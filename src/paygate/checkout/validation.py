"""Checks of a session-create request and of checkout settings, done before anything is written.

:func:`validate_create` turns :class:`~paygate.checkout.schemas.CreateSessionParams` into a :class:`NewSession`
or raises a typed 400 (``InvalidRequest`` with the Stripe ``param`` in bracket form). It needs the clock and the
merchant's default lifetime but no database, so the endpoint runs it before the idempotency key is claimed: a
rejected request stores nothing, as in Stripe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from paygate.checkout.schemas import LOCALES, CreateSessionParams, LineItemParams
from paygate.kit.currencies import DEFAULT_MAX_AMOUNT
from paygate.kit.errors import InvalidRequest
from paygate.kit.money import normalize_currency, validate_charge_amount

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "MAX_EXPIRES_IN",
    "MIN_EXPIRES_IN",
    "Line",
    "NewSession",
    "check_expires_in",
    "check_url",
    "normalize_origin",
    "normalize_origins",
    "validate_create",
]

MIN_EXPIRES_IN = 5 * 60
MAX_EXPIRES_IN = 24 * 3600
DEFAULT_EXPIRES_IN = 10 * 60
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 1_000_000
MAX_FRAME_ANCESTORS = 32
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    description: str | None
    quantity: int
    unit_amount: int

    @property
    def amount_total(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True, slots=True)
class NewSession:
    """A create request that passed every check; the service only has to write it."""

    currency: str
    lines: tuple[Line, ...]
    amount_total: int
    expires_at: int
    params: CreateSessionParams
    prefill_email: str | None = None  # customer_email, or the email of the given customer (for the page)


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required param: {param}.", param=param, code="parameter_missing")


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="parameter_invalid")


def check_url(value: str | None, param: str, *, required: bool) -> None:
    """An absolute http(s) URL without whitespace or control characters."""
    if value is None or value == "":
        if required:
            raise _missing(param)
        return
    parts = urlsplit(value)
    if _CONTROL.search(value) or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid(f"Invalid {param}: must be an absolute http or https URL.", param)


def check_expires_in(value: int, param: str) -> None:
    if not MIN_EXPIRES_IN <= value <= MAX_EXPIRES_IN:
        raise _invalid(
            f"Invalid {param}: must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds (5 minutes to 24 hours).",
            param,
        )


def _line(i: int, item: LineItemParams) -> tuple[str, Line]:
    base = f"line_items[{i}]"
    if item.price is not None:
        raise _invalid(
            f"{base}[price]: paygate has no Price objects; describe the line with {base}[price_data].",
            f"{base}[price]",
        )
    pd = item.price_data
    if pd is None:
        raise _missing(f"{base}[price_data]")
    if pd.product is not None:
        raise _invalid(
            f"{base}[price_data][product]: paygate has no Product objects; use {base}[price_data][product_data][name].",
            f"{base}[price_data][product]",
        )
    if pd.unit_amount_decimal is not None:
        raise _invalid("unit_amount_decimal is not supported; give unit_amount in minor units.", f"{base}[price_data]")
    if pd.product_data is None:
        raise _missing(f"{base}[price_data][product_data]")
    currency = normalize_currency(pd.currency, param=f"{base}[price_data][currency]")
    if pd.unit_amount is None:
        raise _missing(f"{base}[price_data][unit_amount]")
    if not 0 <= pd.unit_amount <= DEFAULT_MAX_AMOUNT:
        raise _invalid(
            f"Invalid {base}[price_data][unit_amount]: must be between 0 and {DEFAULT_MAX_AMOUNT} (minor units).",
            f"{base}[price_data][unit_amount]",
        )
    if item.quantity is None:
        raise _missing(f"{base}[quantity]")
    if not 1 <= item.quantity <= MAX_QUANTITY:
        raise _invalid(f"Invalid {base}[quantity]: must be between 1 and {MAX_QUANTITY}.", f"{base}[quantity]")
    product = pd.product_data
    return currency, Line(product.name, product.description, item.quantity, pd.unit_amount)


def _lines(p: CreateSessionParams) -> tuple[str, tuple[Line, ...], str]:
    """(currency, lines, the param an amount error should name)."""
    if p.line_items is not None and p.amount is not None:
        raise InvalidRequest(
            "You may only specify one of these parameters: line_items, amount.",
            param="amount",
            code="parameter_invalid",
        )
    if p.amount is not None:
        if p.currency is None:
            raise _missing("currency")
        currency = normalize_currency(p.currency)
        if p.amount <= 0:
            raise _invalid("Invalid amount: must be a positive integer.", "amount")
        return currency, (Line(p.description or "Payment", None, 1, p.amount),), "amount"
    if p.description is not None:
        raise _invalid("description is only accepted together with amount (one-line sessions).", "description")
    if not p.line_items:
        raise _missing("line_items")
    if len(p.line_items) > MAX_LINE_ITEMS:
        raise _invalid(f"A Checkout Session can have at most {MAX_LINE_ITEMS} line items.", "line_items")
    lines: list[Line] = []
    first: str | None = normalize_currency(p.currency) if p.currency is not None else None
    for i, item in enumerate(p.line_items):
        currency, line = _line(i, item)
        if first is None:
            first = currency
        elif currency != first:
            raise _invalid(
                f"All line items must use the same currency ({first}); line_items[{i}] uses {currency}.",
                f"line_items[{i}][price_data][currency]",
            )
        lines.append(line)
    assert first is not None
    return first, tuple(lines), "line_items"


def validate_create(p: CreateSessionParams, *, now: int, default_expires_in: int) -> NewSession:
    """See the module docstring. The customer's existence is checked by the service (it needs the database)."""
    if p.mode != "payment":
        raise _invalid(f"Invalid mode: {p.mode[:32]}. paygate supports one-time payments only (mode=payment).", "mode")
    check_url(p.success_url, "success_url", required=True)
    check_url(p.cancel_url, "cancel_url", required=False)
    currency, lines, amount_param = _lines(p)
    total = sum(line.amount_total for line in lines)
    validate_charge_amount(total, currency, param=amount_param)
    if p.customer is not None and p.customer_email is not None:
        raise InvalidRequest(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
            code="parameter_invalid",
        )
    if p.customer_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", p.customer_email):
        raise _invalid("Invalid customer_email: must be an email address.", "customer_email")
    if p.locale is not None and p.locale not in LOCALES:
        raise _invalid(f"Invalid locale: must be one of {', '.join(sorted(LOCALES))}.", "locale")
    if p.expires_at is None:
        expires_at = now + default_expires_in
    else:
        expires_at = p.expires_at
        if not now + MIN_EXPIRES_IN <= expires_at <= now + MAX_EXPIRES_IN:
            raise _invalid(
                "Invalid expires_at: must be between 5 minutes and 24 hours after the session's creation "
                f"(between {now + MIN_EXPIRES_IN} and {now + MAX_EXPIRES_IN}).",
                "expires_at",
            )
    return NewSession(
        currency=currency,
        lines=lines,
        amount_total=total,
        expires_at=expires_at,
        params=p,
        prefill_email=p.customer_email,
    )


def normalize_origin(value: str, param: str) -> str:
    """An https origin (scheme, host, optional port; no path, query, credentials or wildcard) in canonical form,
    safe to place in a CSP ``frame-ancestors`` directive."""
    if not isinstance(value, str) or _CONTROL.search(value) or len(value) > 300:
        raise _invalid(f"Invalid {param}: must be an https origin such as https://shop.example.com.", param)
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if (
        parts.scheme.lower() != "https"
        or not _HOST.match(host)
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or port == -1
        or "," in value
        or ";" in value
    ):
        raise _invalid(f"Invalid {param}: must be an https origin such as https://shop.example.com.", param)
    return f"https://{host}" + (f":{port}" if port not in (None, 443) else "")


def normalize_origins(values: list[str]) -> list[str]:
    if len(values) > MAX_FRAME_ANCESTORS:
        raise _invalid(f"At most {MAX_FRAME_ANCESTORS} frame ancestors.", "allowed_frame_ancestors")
    out: list[str] = []
    for i, value in enumerate(values):
        origin = normalize_origin(value, f"allowed_frame_ancestors[{i}]")
        if origin not in out:
            out.append(origin)
    return out
