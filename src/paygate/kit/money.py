"""Money as integer minor units plus an ISO 4217 currency. Floats are rejected everywhere.

``Decimal`` appears only at the edge, in :func:`parse_major`, to turn a human string such as ``"100.50"`` into
minor units exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from paygate.kit.currencies import DEFAULT_MAX_AMOUNT, EXPONENTS, MINIMUM_CHARGE
from paygate.kit.errors import InvalidRequest

__all__ = ["Money", "exponent", "format_minor", "normalize_currency", "parse_major", "validate_charge_amount"]


def normalize_currency(value: object, *, param: str = "currency") -> str:
    """Return the lower-case ISO 4217 code or raise ``InvalidRequest`` naming ``param``."""
    if not isinstance(value, str) or value.lower() not in EXPONENTS:
        raise InvalidRequest(
            f"Invalid currency: {str(value)[:16]}. Must be a supported ISO 4217 code.",
            param=param,
            code="parameter_invalid_string",
        )
    return value.lower()


def exponent(currency: str) -> int:
    return EXPONENTS[currency]


def validate_charge_amount(amount: int, currency: str, *, param: str = "amount") -> None:
    """Raise ``InvalidRequest`` unless ``amount`` is between the currency's minimum charge and the maximum."""
    minimum = MINIMUM_CHARGE.get(currency, 10 ** EXPONENTS[currency])
    if amount < minimum:
        raise InvalidRequest(
            f"Amount must be at least {format_minor(minimum, currency)} {currency}",
            param=param,
            code="amount_too_small",
        )
    if amount > DEFAULT_MAX_AMOUNT:
        raise InvalidRequest(
            f"Amount must be no more than {format_minor(DEFAULT_MAX_AMOUNT, currency)} {currency}",
            param=param,
            code="amount_too_large",
        )


def format_minor(amount: int, currency: str) -> str:
    """``format_minor(1050, "usd") == "10.50"``; ``format_minor(1050, "jpy") == "1050"``."""
    exp = EXPONENTS[currency]
    if exp == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


def parse_major(text: str, currency: str) -> int:
    """Parse a decimal string in major units into minor units, refusing sub-minor precision.

    ``parse_major("100.50", "usd") == 10050``; ``parse_major("1.2345", "kwd")`` raises.
    """
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest(f"Invalid amount: {text[:32]}", param="amount") from None
    if not value.is_finite():  # NaN, sNaN, Infinity: int() would raise OverflowError/ValueError, not a 400
        raise InvalidRequest(f"Invalid amount: {text[:32]}", param="amount")
    try:
        scaled = value.scaleb(EXPONENTS[currency])
    except ArithmeticError:  # decimal.Overflow for exponents beyond the context's Emax
        raise InvalidRequest(f"Invalid amount: {text[:32]}", param="amount") from None
    if scaled != scaled.to_integral_value():
        raise InvalidRequest(f"Amount has more decimal places than {currency} allows", param="amount")
    return int(scaled)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency. Arithmetic across currencies is an error."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in EXPONENTS:
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    def __str__(self) -> str:
        return f"{format_minor(self.amount, self.currency)} {self.currency.upper()}"
