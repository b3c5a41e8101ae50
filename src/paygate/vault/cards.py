"""Card data validation: PAN (Luhn, brand, length), expiry and CVC.

Contract:

* Every check raises :class:`~paygate.vault.errors.CardValidationError` with a Stripe error ``code`` and
  ``param``; messages never contain the submitted number, expiry or CVC.
* PAN input may contain spaces and dashes (``4242 4242-4242 4242``); anything else is ``invalid_number``.
* Error codes follow Stripe: a number that fails the Luhn check is ``incorrect_number``; a number that is not
  a card number at all (non-digits, no known brand, a length the brand does not issue) is ``invalid_number``.
* Brand detection uses the longest matching IIN range, so a specific range (Discover's 622126-622925) wins
  over a broad one (UnionPay's 62).
* A card is valid through the last day of its expiry month (month granularity, UTC).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from paygate.kit.luhn import luhn_valid
from paygate.vault.errors import CardValidationError

__all__ = [
    "CardBrand",
    "ValidatedCard",
    "brand_lengths",
    "card_country",
    "detect_brand",
    "luhn_valid",
    "normalize_number",
    "validate_card",
    "validate_cvc",
    "validate_expiry",
    "validate_number",
]

MAX_YEARS_AHEAD = 50  # expiry years further out than this are rejected (Stripe does the same kind of check)


class CardBrand(enum.StrEnum):
    """Card brands, spelled as Stripe's ``card.brand`` (plus ``maestro``)."""

    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    DINERS = "diners"
    JCB = "jcb"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    UNKNOWN = "unknown"


# (brand, low, high) over the first len(str(low)) digits of the PAN; inclusive ranges.
_IIN_RANGES: tuple[tuple[CardBrand, int, int], ...] = (
    (CardBrand.VISA, 4, 4),
    (CardBrand.MASTERCARD, 51, 55),
    (CardBrand.MASTERCARD, 222100, 272099),
    (CardBrand.AMEX, 34, 34),
    (CardBrand.AMEX, 37, 37),
    (CardBrand.DISCOVER, 6011, 6011),
    (CardBrand.DISCOVER, 644, 649),
    (CardBrand.DISCOVER, 65, 65),
    (CardBrand.DISCOVER, 622126, 622925),
    (CardBrand.DINERS, 300, 305),
    (CardBrand.DINERS, 36, 36),
    (CardBrand.DINERS, 38, 39),
    (CardBrand.JCB, 3528, 3589),
    (CardBrand.UNIONPAY, 62, 62),
    (CardBrand.MAESTRO, 5018, 5018),
    (CardBrand.MAESTRO, 5020, 5020),
    (CardBrand.MAESTRO, 5038, 5038),
    (CardBrand.MAESTRO, 5893, 5893),
    (CardBrand.MAESTRO, 6304, 6304),
    (CardBrand.MAESTRO, 6759, 6759),
    (CardBrand.MAESTRO, 6761, 6763),
)

_LENGTHS: dict[CardBrand, frozenset[int]] = {
    CardBrand.VISA: frozenset({13, 16, 19}),
    CardBrand.MASTERCARD: frozenset({16}),
    CardBrand.AMEX: frozenset({15}),
    CardBrand.DISCOVER: frozenset(range(16, 20)),
    CardBrand.DINERS: frozenset(range(14, 20)),
    CardBrand.JCB: frozenset(range(16, 20)),
    CardBrand.UNIONPAY: frozenset(range(16, 20)),
    CardBrand.MAESTRO: frozenset(range(12, 20)),
}

# Well-known public *test* numbers (Stripe's country test cards). Keyed by a leading-digit prefix; the longest
# matching prefix wins. Production BIN tables come from a licensed BIN service, not from this module.
_TEST_BIN_COUNTRY: dict[str, str] = {
    "424242": "US",  # 4242424242424242 Visa
    "400005665": "US",  # 4000056655665556 Visa debit
    "555555": "US",  # 5555555555554444 Mastercard
    "378282": "US",  # 378282246310005 Amex
    "601111": "US",  # 6011111111111117 Discover
    "353011": "JP",  # 3530111333300000 JCB
    "400000076": "BR",  # 4000000760000002
    "400000124": "CA",  # 4000001240000000
    "400000484": "MX",  # 4000004840008001
    "400000040": "AT",  # 4000000400000008
    "400000056": "BE",  # 4000000560000004
    "400000208": "DK",  # 4000002080000001
    "400000246": "FI",  # 4000002460000001
    "400000250": "FR",  # 4000002500000003
    "400000276": "DE",  # 4000002760000016
    "400000372": "IE",  # 4000003720000005
    "400000380": "IT",  # 4000003800000008
    "400000528": "NL",  # 4000005280000002
    "400000578": "NO",  # 4000005780000007
    "400000620": "PT",  # 4000006200000007
    "400000724": "ES",  # 4000007240000007
    "400000752": "SE",  # 4000007520000008
    "400000756": "CH",  # 4000007560000009
    "400000826": "GB",  # 4000008260000000
    "400005826": "GB",  # 4000058260000005 Visa debit
    "400000036": "AU",  # 4000000360000006
    "400000344": "HK",  # 4000003440000004
    "400000392": "JP",  # 4000003920000003
    "400000702": "SG",  # 4000007020000003
    "400000554": "NZ",  # 4000005540000008
    "400000356": "IN",  # 4000003560000008
}

_NUMBER = "card[number]"
_MONTH = "card[exp_month]"
_YEAR = "card[exp_year]"
_CVC = "card[cvc]"


@dataclass(frozen=True, slots=True)
class ValidatedCard:
    """A card that passed every check. ``number`` is digits only, ``exp_year`` has four digits.

    ``repr`` shows at most BIN + last 4 and never the CVC (PCI DSS 3.4.1).
    """

    number: str
    brand: CardBrand
    exp_month: int
    exp_year: int
    cvc: str | None = None

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def bin(self) -> str:
        return self.number[:6]

    def __repr__(self) -> str:
        return (
            f"ValidatedCard(brand={self.brand.value!r}, number='{self.bin}…{self.last4}', "
            f"exp={self.exp_month:02d}/{self.exp_year}, cvc={'***' if self.cvc else None})"
        )

    __str__ = __repr__


def normalize_number(raw: str) -> str:
    """Strip spaces and dashes; raise ``invalid_number`` if anything but ASCII digits remains."""
    if not isinstance(raw, str):
        raise CardValidationError("invalid_number", _NUMBER, "The card number is not a valid card number.")
    digits = raw.replace(" ", "").replace("-", "")
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise CardValidationError("invalid_number", _NUMBER, "The card number is not a valid card number.")
    return digits


def detect_brand(number: str) -> CardBrand:
    """Brand of a (normalised) number by its leading digits; ``UNKNOWN`` when no range matches."""
    best: CardBrand = CardBrand.UNKNOWN
    best_len = 0
    for brand, low, high in _IIN_RANGES:
        width = len(str(low))
        if width <= best_len or len(number) < width:
            continue
        prefix = number[:width]
        if prefix.isdigit() and low <= int(prefix) <= high:
            best, best_len = brand, width
    return best


def brand_lengths(brand: CardBrand) -> frozenset[int]:
    """PAN lengths a brand issues (empty for ``UNKNOWN``)."""
    return _LENGTHS.get(brand, frozenset())


def validate_number(raw: str) -> tuple[str, CardBrand]:
    """Normalise and validate a PAN. Returns ``(digits, brand)``.

    Raises ``invalid_number`` for non-digits, unknown brand or a length the brand does not use, and
    ``incorrect_number`` when the Luhn check fails.
    """
    digits = normalize_number(raw)
    if not 12 <= len(digits) <= 19:
        raise CardValidationError("invalid_number", _NUMBER, "The card number is not a valid card number.")
    brand = detect_brand(digits)
    if brand is CardBrand.UNKNOWN or len(digits) not in _LENGTHS[brand]:
        raise CardValidationError("invalid_number", _NUMBER, "The card number is not a valid card number.")
    if not luhn_valid(digits):
        raise CardValidationError("incorrect_number", _NUMBER, "The card number is incorrect.")
    return digits, brand


def _as_int(value: int | str, code: str, param: str, message: str) -> int:
    if isinstance(value, bool):
        raise CardValidationError(code, param, message)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text and text.isascii() and text.isdigit() and len(text) <= 4:
            return int(text)
    raise CardValidationError(code, param, message)


def validate_expiry(exp_month: int | str, exp_year: int | str, *, now: datetime | None = None) -> tuple[int, int]:
    """Validate an expiry date; returns ``(month, four_digit_year)``.

    ``exp_year`` may have 2 digits (``27`` means 2027) or 4 digits. The card is valid through the end of its
    expiry month in UTC. Raises ``invalid_expiry_month`` (month not 1-12, or this year and the month has
    passed) or ``invalid_expiry_year`` (malformed, in the past, or more than :data:`MAX_YEARS_AHEAD` years
    ahead).
    """
    month_msg = "The card's expiration month is invalid."
    year_msg = "The card's expiration year is invalid."
    month = _as_int(exp_month, "invalid_expiry_month", _MONTH, month_msg)
    if not 1 <= month <= 12:
        raise CardValidationError("invalid_expiry_month", _MONTH, month_msg)
    year_text = str(exp_year).strip() if isinstance(exp_year, str) else None
    year = _as_int(exp_year, "invalid_expiry_year", _YEAR, year_msg)
    two_digit = len(year_text) <= 2 if year_text is not None else 0 <= year <= 99
    if two_digit:
        year += 2000
    if not 1000 <= year <= 9999:
        raise CardValidationError("invalid_expiry_year", _YEAR, year_msg)
    today = (now or datetime.now(UTC)).astimezone(UTC)
    if year < today.year or year > today.year + MAX_YEARS_AHEAD:
        raise CardValidationError("invalid_expiry_year", _YEAR, year_msg)
    if year == today.year and month < today.month:
        raise CardValidationError("invalid_expiry_month", _MONTH, month_msg)
    return month, year


def validate_cvc(cvc: str, brand: CardBrand) -> str:
    """Validate a CVC: ASCII digits, 4 for Amex, 3 for every other brand. Returns it stripped."""
    expected = 4 if brand is CardBrand.AMEX else 3
    text = cvc.strip() if isinstance(cvc, str) else ""
    if len(text) != expected or not (text.isascii() and text.isdigit()):
        raise CardValidationError("invalid_cvc", _CVC, "The card's security code is invalid.")
    return text


def validate_card(
    number: str,
    exp_month: int | str,
    exp_year: int | str,
    cvc: str | None = None,
    *,
    now: datetime | None = None,
) -> ValidatedCard:
    """Run every check in Stripe's order (number, expiry, CVC) and return the normalised card.

    ``cvc`` is optional (saved cards, some wallets); when given it must match the brand's length.
    """
    digits, brand = validate_number(number)
    month, year = validate_expiry(exp_month, exp_year, now=now)
    checked_cvc = validate_cvc(cvc, brand) if cvc is not None else None
    return ValidatedCard(number=digits, brand=brand, exp_month=month, exp_year=year, cvc=checked_cvc)


def card_country(bin_or_number: str) -> str | None:
    """ISO 3166-1 alpha-2 issuing country for well-known public test BINs, else ``None``.

    Pass as many leading digits as you have (a full PAN inside the vault, or the first 6-9 digits); the
    longest prefix in the table wins. The table covers Stripe's documented country test cards only (e.g.
    ``4000002500000003`` is FR, ``4000000760000002`` BR, ``4000056655665556`` a US debit card); real BIN data
    needs a BIN service.
    """
    digits = bin_or_number.replace(" ", "").replace("-", "")
    for width in range(min(len(digits), 9), 5, -1):
        country = _TEST_BIN_COUNTRY.get(digits[:width])
        if country is not None:
            return country
    return None
