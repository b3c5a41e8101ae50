"""Locale negotiation and money formatting of the hosted page (pure functions, no server)."""

from __future__ import annotations

import pytest
from babel import Locale

from paygate.checkout.format import default_country, format_money, negotiate_locale, parse_accept_language


def test_accept_language_is_ordered_by_quality_and_drops_q_zero() -> None:
    header = "fr-CH;q=0.5, de;q=0.9, en-GB, it;q=0, *;q=0.1"
    assert parse_accept_language(header) == ["en-GB", "de", "fr-CH", "*"]
    assert parse_accept_language(None) == [] and parse_accept_language(";;,,") == []


def test_session_locale_wins_then_the_browser_then_english() -> None:
    assert str(negotiate_locale("fr", "de-DE")) == "fr"
    assert str(negotiate_locale("auto", "xx-YY, de-AT;q=0.8")) == "de_AT"  # unknown tags are skipped
    assert str(negotiate_locale(None, "not a language")) == "en"
    assert str(negotiate_locale("zz", "es-MX")) == "es_MX"  # an unknown session locale still honours the browser


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (4190, "eur", "fr", "41,90\u00a0€"),
        (4190, "usd", "en_US", "$41.90"),
        (123456789, "usd", "en_IN", "$12,34,567.89"),
        (3500, "jpy", "ja_JP", "￥3,500"),  # zero-decimal
        (1234567, "kwd", "en_US", "KWD\u00a01,234.567"),  # three decimals, paygate's exponent
        (5, "usd", "de_DE", "0,05\u00a0$"),
    ],
)
def test_money_uses_paygates_exponent_and_the_locales_conventions(
    amount: int, currency: str, locale: str, expected: str
) -> None:
    assert format_money(amount, currency, Locale.parse(locale)) == expected


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        format_money(10.5, "usd", Locale.parse("en"))  # type: ignore[arg-type]


def test_default_country_comes_from_the_locale_or_the_header() -> None:
    assert default_country(Locale.parse("de_DE"), None) == "DE"
    assert default_country(Locale.parse("en"), "en-GB,en;q=0.8") == "GB"
    assert default_country(Locale.parse("en"), "en") is None
