"""Locale negotiation and money / country formatting for the hosted checkout page (babel, CLDR data).

Contracts:

* :func:`negotiate_locale` picks the display locale: the session's ``locale`` unless it is ``None`` / ``"auto"``,
  else the best ``Accept-Language`` entry babel knows, else ``en``. It never raises on malformed input.
* :func:`format_money` renders integer minor units with **paygate's** exponent table (the one that decides what
  an amount means), not CLDR's own currency digits, so the page always shows exactly the amount charged:
  1050 USD is ``$10.50`` in ``en``, ``10,50 $US`` in ``fr``; 1050 JPY is ``￥1,050``. No float is involved.
* :func:`country_options` lists ISO 3166-1 alpha-2 countries with names in the display locale, sorted for it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import NumberPattern

from paygate.kit.currencies import EXPONENTS

__all__ = [
    "DEFAULT_LOCALE",
    "country_options",
    "default_country",
    "format_duration",
    "format_money",
    "negotiate_locale",
    "parse_accept_language",
]

DEFAULT_LOCALE = "en"

_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")

# CLDR "territories" that are not countries a card can be billed in (or are private-use codes).
_NOT_COUNTRIES = frozenset({"EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"})


@lru_cache(maxsize=256)
def _parse_locale(tag: str) -> Locale | None:
    tag = tag.strip().replace("_", "-")
    if not tag or tag == "*" or len(tag) > 35:
        return None
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags from an ``Accept-Language`` header, best first (stable for equal weights); ``q=0`` dropped."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag.strip() and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_locale(session_locale: str | None, accept_language: str | None) -> Locale:
    """The locale to format the page for (see the module docstring)."""
    candidates: Iterable[str] = (
        [session_locale] if session_locale and session_locale != "auto" else parse_accept_language(accept_language)
    )
    for tag in candidates:
        parsed = _parse_locale(tag)
        if parsed is not None:
            return parsed
    if session_locale and session_locale != "auto":  # an unknown session locale still honours the browser
        for tag in parse_accept_language(accept_language):
            parsed = _parse_locale(tag)
            if parsed is not None:
                return parsed
    return Locale.parse(DEFAULT_LOCALE)


@lru_cache(maxsize=512)
def _pattern(locale: Locale, exponent: int) -> NumberPattern:
    pattern: NumberPattern = copy.copy(locale.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    return pattern


def format_money(amount: int, currency: str, locale: Locale) -> str:
    """``amount`` minor units of ``currency`` (lower- or upper-case ISO 4217) formatted for ``locale``."""
    if type(amount) is not int:
        raise TypeError("amount must be an int of minor units")
    code = currency.lower()
    exponent = EXPONENTS[code]
    value = Decimal(amount).scaleb(-exponent)
    text: str = _pattern(locale, exponent).apply(value, locale, currency=code.upper(), currency_digits=False)
    # CLDR "currency spacing", which babel leaves out: a symbol made of letters (KWD, CHF) never touches a digit.
    return _LETTER_DIGIT.sub("\u00a0", text, count=1)


@lru_cache(maxsize=64)
def _countries(locale: Locale) -> tuple[tuple[str, str], ...]:
    names = locale.territories
    rows = [
        (code, name)
        for code, name in names.items()
        if len(code) == 2 and code.isascii() and code.isalpha() and code.isupper() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(rows, key=lambda row: row[1].casefold()))


def country_options(locale: Locale) -> tuple[tuple[str, str], ...]:
    """``(alpha-2 code, localized name)`` pairs, sorted by name."""
    return _countries(locale)


def default_country(locale: Locale, accept_language: str | None) -> str | None:
    """A sensible pre-selected billing country: the display locale's territory, else the first region named in
    ``Accept-Language`` (``en-GB`` → ``GB``); ``None`` when neither names one."""
    known = {code for code, _ in _countries(locale)}
    if locale.territory in known:
        return locale.territory
    for tag in parse_accept_language(accept_language):
        parsed = _parse_locale(tag)
        if parsed is not None and parsed.territory in known:
            return parsed.territory
    return None


def format_duration(seconds: int) -> str:
    """A short English duration for the expiry notice: ``"29 minutes"``, ``"1 minute"``, ``"2 hours 5 minutes"``."""
    minutes = max(0, seconds) // 60
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)
