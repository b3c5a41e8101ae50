"""The hosted page's card form: reading the POST body and validating it into a :class:`CardInput`.

The checks mirror ``static/page.js`` (same rules, same messages) so a customer without JavaScript gets the same
answers; the server is the authority. Contract: error messages never quote what was typed, and
:func:`safe_values` is the only way form values get back into a page (name, country, postal code -- never the
card number, expiry or CVC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs

from babel import Locale
from fastapi import Request

from paygate.checkout.format import country_options
from paygate.checkout.schemas import CardInput
from paygate.kit.luhn import luhn_valid

__all__ = ["FIELDS", "MAX_BODY", "POSTAL_REQUIRED", "UI_LOCALE", "read_form", "safe_values", "validate_card"]

FIELDS = ("number", "exp", "cvc", "name", "country", "postal_code")
MAX_BODY = 16 * 1024
POSTAL_REQUIRED = ("US", "CA", "GB")  # where a billing postal code is required
UI_LOCALE = Locale.parse("en")  # the page's own text is English; amounts follow the negotiated locale

_EXPIRY = re.compile(r"\s*(\d{1,2})\s*[/\-. ]?\s*(\d{2}|\d{4})\s*")
_POSTAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{1,9}")
_US_ZIP = re.compile(r"\d{5}(?:-?\d{4})?")


def _card_lengths(digits: str) -> tuple[int, int, int]:
    """(min length, max length, CVC length) for the brand the number's prefix suggests."""
    if digits[:2] in ("34", "37"):
        return 15, 15, 4
    return 12, 19, 3


def _check_number(raw: str) -> tuple[str, str]:
    if not raw.strip():
        return "", "Enter your card number."
    if re.search(r"[^\d \-]", raw):
        return "", "Your card number is invalid."
    digits = re.sub(r"[ \-]", "", raw)
    low, high, _ = _card_lengths(digits)
    if len(digits) < low:
        return "", "Your card number is incomplete."
    if len(digits) > high or not luhn_valid(digits):
        return "", "Your card number is invalid."
    return digits, ""


def _check_expiry(raw: str, now: int) -> tuple[tuple[int, int] | None, str]:
    if not raw.strip():
        return None, "Enter your card's expiry date."
    match = _EXPIRY.fullmatch(raw)
    if match is None:
        digits = re.sub(r"\D", "", raw)
        if len(digits) not in (4, 6):
            return None, "Your card's expiry date is incomplete."
        month_s, year_s = digits[:2], digits[2:]
    else:
        month_s, year_s = match.group(1), match.group(2)
    month, year = int(month_s), int(year_s)
    if len(year_s) == 2:
        year += 2000
    if not 1 <= month <= 12:
        return None, "Your card's expiry month is invalid."
    today = datetime.fromtimestamp(now, UTC)
    if (year, month) < (today.year, today.month):
        return None, "Your card's expiry date is in the past."
    if year > today.year + 20:
        return None, "Your card's expiry year is invalid."
    return (month, year), ""


def _check_cvc(raw: str, digits: str) -> str:
    """``digits``: the valid card number, or "" when the number itself is wrong (then 3 or 4 digits pass)."""
    value = raw.strip()
    if not value:
        return "Enter your card's security code."
    if not (value.isascii() and value.isdigit()):
        return "Your card's security code is invalid."
    low, high = (_card_lengths(digits)[2],) * 2 if digits else (3, 4)
    if len(value) < low:
        return "Your card's security code is incomplete."
    if len(value) > high:
        return "Your card's security code is invalid."
    return ""


def validate_card(form: dict[str, str], now: int) -> tuple[CardInput | None, dict[str, str]]:
    """The card to submit, or the field errors (keyed by form field). Never echoes a card value."""
    errors: dict[str, str] = {}
    digits, message = _check_number(form.get("number", ""))
    if message:
        errors["number"] = message
    expiry, message = _check_expiry(form.get("exp", ""), now)
    if message:
        errors["exp"] = message
    message = _check_cvc(form.get("cvc", ""), digits)
    if message:
        errors["cvc"] = message
    name = form.get("name", "").strip()
    if not name:
        errors["name"] = "Enter the name on your card."
    elif len(name) > 100:
        errors["name"] = "The name on your card is too long."
    country = form.get("country", "").strip().upper()
    if country not in {code for code, _ in country_options(UI_LOCALE)}:
        errors["country"] = "Select your billing country or region."
    postal = form.get("postal_code", "").strip()
    if not postal:
        if country in POSTAL_REQUIRED:
            errors["postal_code"] = "Enter your postal code."
    elif country == "US" and not _US_ZIP.fullmatch(postal):
        errors["postal_code"] = "Your ZIP code is invalid."
    elif not _POSTAL.fullmatch(postal):
        errors["postal_code"] = "Your postal code is invalid."
    if errors or expiry is None:
        return None, errors
    card = CardInput(
        number=digits,
        exp_month=expiry[0],
        exp_year=expiry[1],
        cvc=form.get("cvc", "").strip(),
        name=name,
        country=country,
        postal_code=postal or None,
    )
    return card, {}


def safe_values(form: dict[str, str]) -> dict[str, str]:
    """The only fields ever rendered back: name, country, postal code (trimmed, bounded)."""
    return {
        "name": form.get("name", "").strip()[:100],
        "country": form.get("country", "").strip().upper()[:2],
        "postal_code": form.get("postal_code", "").strip()[:10],
    }


async def read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded body as ``{field: first value}``; ``None`` if it is too large or malformed."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return None
    body = await request.body()
    if len(body) > MAX_BODY:
        return None
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    try:
        parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=32)
    except ValueError:
        return None
    return {key: values[0] for key, values in parsed.items() if key in (*FIELDS, "csrf_token") and values}
