"""Money is integer minor units; the exponent table decides what an amount means; floats never get in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit.currencies import DEFAULT_MAX_AMOUNT, EXPONENTS, MINIMUM_CHARGE
from paygate.kit.errors import InvalidRequest
from paygate.kit.money import (
    Money,
    exponent,
    format_minor,
    normalize_currency,
    parse_major,
    validate_charge_amount,
)

CURRENCIES = sorted(EXPONENTS)


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("jpy", 0), ("krw", 0), ("clp", 0), ("usd", 2), ("eur", 2), ("gbp", 2), ("kwd", 3), ("bhd", 3), ("jod", 3)],
)
def test_exponent_table_matches_iso_4217(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


def test_exponent_table_has_only_lowercase_three_letter_codes_with_known_exponents() -> None:
    assert all(len(c) == 3 and c.isalpha() and c.islower() for c in EXPONENTS)
    assert set(EXPONENTS.values()) == {0, 2, 3}


def test_every_minimum_charge_is_for_a_known_currency() -> None:
    assert set(MINIMUM_CHARGE) <= set(EXPONENTS)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1050, "usd", "10.50"),
        (5, "usd", "0.05"),
        (0, "usd", "0.00"),
        (-5, "usd", "-0.05"),
        (-1050, "eur", "-10.50"),
        (1050, "jpy", "1050"),
        (-7, "jpy", "-7"),
        (1, "kwd", "0.001"),
        (1234, "kwd", "1.234"),
        (99_999_999, "usd", "999999.99"),
    ],
)
def test_format_minor_renders_major_units_with_the_currency_exponent(amount: int, currency: str, text: str) -> None:
    assert format_minor(amount, currency) == text


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [
        ("100.50", "usd", 10050),
        ("100.5", "usd", 10050),
        ("100", "usd", 10000),
        ("0.01", "usd", 1),
        ("1050", "jpy", 1050),
        ("1050.0", "jpy", 1050),
        ("1.234", "kwd", 1234),
        ("0.001", "kwd", 1),
        ("-0.05", "usd", -5),
    ],
)
def test_parse_major_converts_exactly_to_minor_units(text: str, currency: str, amount: int) -> None:
    assert parse_major(text, currency) == amount


@pytest.mark.parametrize(
    ("text", "currency"),
    [("0.001", "usd"), ("10.505", "eur"), ("1.5", "jpy"), ("0.1", "krw"), ("1.2345", "kwd"), ("0.0001", "bhd")],
)
def test_parse_major_rejects_sub_minor_precision(text: str, currency: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_major(text, currency)
    assert exc.value.param == "amount"
    assert exc.value.status == 400


@pytest.mark.parametrize("text", ["", "abc", "1,50", "1.2.3", "$5", "NaN", "Infinity", "-inf", "sNaN", "1e999999999"])
def test_parse_major_rejects_non_numbers_and_non_finite_values_with_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_major(text, "usd")
    assert exc.value.param == "amount"


@given(currency=st.sampled_from(CURRENCIES), amount=st.integers(min_value=-(10**15), max_value=10**15))
def test_parse_major_inverts_format_minor_for_every_currency(currency: str, amount: int) -> None:
    assert parse_major(format_minor(amount, currency), currency) == amount


@given(currency=st.sampled_from(CURRENCIES), amount=st.integers(min_value=0, max_value=10**12))
def test_format_minor_has_exactly_exponent_decimal_places(currency: str, amount: int) -> None:
    text = format_minor(amount, currency)
    exp = EXPONENTS[currency]
    if exp == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == exp


@pytest.mark.parametrize(
    ("currency", "minimum"),
    [("usd", 50), ("eur", 50), ("gbp", 30), ("jpy", 50), ("kwd", 200), ("bif", 1), ("tnd", 1000), ("ars", 100)],
)
def test_validate_charge_amount_enforces_the_currency_minimum(currency: str, minimum: int) -> None:
    validate_charge_amount(minimum, currency)
    with pytest.raises(InvalidRequest) as exc:
        validate_charge_amount(minimum - 1, currency)
    assert exc.value.code == "amount_too_small"
    assert exc.value.param == "amount"


@pytest.mark.parametrize("currency", ["usd", "jpy", "kwd"])
def test_validate_charge_amount_enforces_the_maximum(currency: str) -> None:
    validate_charge_amount(DEFAULT_MAX_AMOUNT, currency)
    with pytest.raises(InvalidRequest) as exc:
        validate_charge_amount(DEFAULT_MAX_AMOUNT + 1, currency)
    assert exc.value.code == "amount_too_large"


def test_validate_charge_amount_names_the_param_it_was_given() -> None:
    with pytest.raises(InvalidRequest) as exc:
        validate_charge_amount(1, "usd", param="amount_to_capture")
    assert exc.value.param == "amount_to_capture"
    assert "0.50 usd" in exc.value.message


@pytest.mark.parametrize("value", ["USD", "Usd", "usd"])
def test_normalize_currency_lowercases_known_codes(value: str) -> None:
    assert normalize_currency(value) == "usd"


@pytest.mark.parametrize("value", ["xyz", "us", "", "usdd", 840, None, ["usd"]])
def test_normalize_currency_rejects_unknown_codes_and_non_strings(value: object) -> None:
    with pytest.raises(InvalidRequest) as exc:
        normalize_currency(value, param="currency")
    assert exc.value.param == "currency"
    assert exc.value.code == "parameter_invalid_string"


@pytest.mark.parametrize("amount", [10.0, 10.5, True, False, "10", None])
def test_money_refuses_anything_but_int_minor_units(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "usd")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["USD", "xyz", ""])
def test_money_refuses_unknown_or_uppercase_currency(currency: str) -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        Money(100, currency)


def test_money_arithmetic_across_currencies_is_an_error() -> None:
    usd, eur = Money(100, "usd"), Money(100, "eur")
    with pytest.raises(ValueError, match="currency mismatch"):
        _ = usd + eur
    with pytest.raises(ValueError, match="currency mismatch"):
        _ = usd - eur


def test_money_arithmetic_in_one_currency_stays_exact_ints() -> None:
    total = Money(10, "usd") + Money(20, "usd") - Money(5, "usd")
    assert total == Money(25, "usd")
    assert type(total.amount) is int
    assert -total == Money(-25, "usd")
    assert str(Money(1050, "usd")) == "10.50 USD"
    assert str(Money(1234, "kwd")) == "1.234 KWD"


def test_money_is_immutable() -> None:
    m = Money(100, "usd")
    with pytest.raises(AttributeError):
        m.amount = 200  # type: ignore[misc]


@given(
    currency=st.sampled_from(CURRENCIES),
    a=st.integers(min_value=-(10**12), max_value=10**12),
    b=st.integers(min_value=-(10**12), max_value=10**12),
)
def test_money_addition_and_subtraction_are_exact_inverses(currency: str, a: int, b: int) -> None:
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y) - y == x
