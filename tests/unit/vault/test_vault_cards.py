from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.vault.cards import (
    CardBrand,
    card_country,
    detect_brand,
    luhn_valid,
    validate_card,
    validate_cvc,
    validate_expiry,
    validate_number,
)
from paygate.vault.errors import CardValidationError

NOW = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)


def with_check_digit(body: str) -> str:
    for d in "0123456789":
        if luhn_valid(body + d):
            return body + d
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424242",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3056930009020004",
        "3566002020360505",
        "6200000000000005",
        "79927398713",
    ],
)
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "1234567812345678", "", "4", "42a2"])
def test_luhn_rejects_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@given(st.text(alphabet="0123456789", min_size=12, max_size=18), st.integers(0, 18), st.integers(1, 9))
def test_luhn_detects_any_single_digit_change(body: str, pos: int, delta: int) -> None:
    number = with_check_digit(body)
    pos %= len(number)
    changed = number[:pos] + str((int(number[pos]) + delta) % 10) + number[pos + 1 :]
    assert not luhn_valid(changed)


@pytest.mark.parametrize(
    ("prefix", "brand"),
    [
        ("4", CardBrand.VISA),
        ("51", CardBrand.MASTERCARD),
        ("55", CardBrand.MASTERCARD),
        ("222100", CardBrand.MASTERCARD),
        ("272099", CardBrand.MASTERCARD),
        ("222099", CardBrand.UNKNOWN),
        ("272100", CardBrand.UNKNOWN),
        ("34", CardBrand.AMEX),
        ("37", CardBrand.AMEX),
        ("6011", CardBrand.DISCOVER),
        ("644", CardBrand.DISCOVER),
        ("649", CardBrand.DISCOVER),
        ("65", CardBrand.DISCOVER),
        ("622126", CardBrand.DISCOVER),
        ("622925", CardBrand.DISCOVER),
        ("622125", CardBrand.UNIONPAY),
        ("622926", CardBrand.UNIONPAY),
        ("62", CardBrand.UNIONPAY),
        ("300", CardBrand.DINERS),
        ("305", CardBrand.DINERS),
        ("306", CardBrand.UNKNOWN),
        ("36", CardBrand.DINERS),
        ("38", CardBrand.DINERS),
        ("39", CardBrand.DINERS),
        ("3528", CardBrand.JCB),
        ("3589", CardBrand.JCB),
        ("3527", CardBrand.UNKNOWN),
        ("5018", CardBrand.MAESTRO),
        ("5020", CardBrand.MAESTRO),
        ("5038", CardBrand.MAESTRO),
        ("5893", CardBrand.MAESTRO),
        ("6304", CardBrand.MAESTRO),
        ("6759", CardBrand.MAESTRO),
        ("6761", CardBrand.MAESTRO),
        ("6763", CardBrand.MAESTRO),
        ("6764", CardBrand.UNKNOWN),
        ("1", CardBrand.UNKNOWN),
        ("9", CardBrand.UNKNOWN),
    ],
)
def test_brand_is_detected_from_iin_ranges(prefix: str, brand: CardBrand) -> None:
    assert detect_brand(prefix.ljust(16, "0")) is brand


def test_a_prefix_too_short_for_the_mastercard_2_series_is_unknown() -> None:
    assert detect_brand("2221") is CardBrand.UNKNOWN


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", CardBrand.VISA),
        ("4222222222222", CardBrand.VISA),  # 13-digit Visa
        ("5555555555554444", CardBrand.MASTERCARD),
        ("2223003122003222", CardBrand.MASTERCARD),
        ("378282246310005", CardBrand.AMEX),
        ("6011111111111117", CardBrand.DISCOVER),
        ("3056930009020004", CardBrand.DINERS),
        ("36227206271667", CardBrand.DINERS),  # 14-digit Diners
        ("3566002020360505", CardBrand.JCB),
        ("6200000000000005", CardBrand.UNIONPAY),
        ("6759649826438453", CardBrand.MAESTRO),
    ],
)
def test_valid_test_cards_pass_with_their_brand(number: str, brand: CardBrand) -> None:
    assert validate_number(number) == (number, brand)


@pytest.mark.parametrize("raw", ["4242 4242 4242 4242", "4242-4242-4242-4242", " 4242424242424242 "])
def test_numbers_are_normalised(raw: str) -> None:
    assert validate_number(raw) == ("4242424242424242", CardBrand.VISA)


def test_luhn_failure_is_incorrect_number() -> None:
    with pytest.raises(CardValidationError) as info:
        validate_number("4242424242424241")
    assert (info.value.code, info.value.param) == ("incorrect_number", "card[number]")
    assert "4242" not in info.value.message and "4242" not in repr(info.value)


@pytest.mark.parametrize(
    "raw",
    [
        "4242x42424242424",  # not digits
        "",
        "42424242424",  # too short for any brand
        with_check_digit("4242424242424242424"),  # 20 digits
        with_check_digit("55555555555544"),  # Mastercard must have 16 digits
        with_check_digit("3782822463100"),  # Amex must have 15 digits
        with_check_digit("42424242424242"),  # Visa has 13, 16 or 19 digits, not 15
        with_check_digit("900000000000000"),  # no known brand
    ],
)
def test_malformed_numbers_are_invalid_number(raw: str) -> None:
    with pytest.raises(CardValidationError) as info:
        validate_number(raw)
    assert info.value.code == "invalid_number"
    assert info.value.param == "card[number]"


@pytest.mark.parametrize(
    ("month", "year", "expected"),
    [
        (5, 2026, (5, 2026)),
        (12, 26, (12, 2026)),
        ("06", "2030", (6, 2030)),
        (1, "27", (1, 2027)),
        (12, 2076, (12, 2076)),
    ],
)
def test_expiry_in_the_current_month_or_later_is_valid(
    month: int | str, year: int | str, expected: tuple[int, int]
) -> None:
    assert validate_expiry(month, year, now=NOW) == expected


@pytest.mark.parametrize(
    ("month", "year", "code"),
    [
        (4, 2026, "invalid_expiry_month"),  # last month
        (0, 2027, "invalid_expiry_month"),
        (13, 2027, "invalid_expiry_month"),
        ("ab", 2027, "invalid_expiry_month"),
        (12, 2025, "invalid_expiry_year"),
        (12, 25, "invalid_expiry_year"),
        (12, 2077, "invalid_expiry_year"),  # more than 50 years ahead
        (12, "20x7", "invalid_expiry_year"),
        (12, 123, "invalid_expiry_year"),
    ],
)
def test_bad_or_past_expiry_is_rejected_with_typed_code(month: int | str, year: int | str, code: str) -> None:
    with pytest.raises(CardValidationError) as info:
        validate_expiry(month, year, now=NOW)
    assert info.value.code == code
    assert info.value.param == ("card[exp_month]" if code == "invalid_expiry_month" else "card[exp_year]")


@pytest.mark.parametrize(
    ("cvc", "brand", "ok"),
    [
        ("123", CardBrand.VISA, True),
        ("1234", CardBrand.AMEX, True),
        ("123", CardBrand.AMEX, False),
        ("1234", CardBrand.VISA, False),
        ("12a", CardBrand.VISA, False),
        ("", CardBrand.MASTERCARD, False),
    ],
)
def test_cvc_length_depends_on_brand(cvc: str, brand: CardBrand, ok: bool) -> None:
    if ok:
        assert validate_cvc(cvc, brand) == cvc
    else:
        with pytest.raises(CardValidationError) as info:
            validate_cvc(cvc, brand)
        assert (info.value.code, info.value.param) == ("invalid_cvc", "card[cvc]")
        assert cvc == "" or cvc not in info.value.message


def test_validate_card_returns_normalised_card_with_redacted_repr() -> None:
    card = validate_card("3782 822463 10005", "12", "30", "1234", now=NOW)
    assert (card.number, card.brand, card.exp_month, card.exp_year, card.cvc) == (
        "378282246310005",
        CardBrand.AMEX,
        12,
        2030,
        "1234",
    )
    assert "378282246310005" not in repr(card) and "1234'" not in repr(card)
    assert card.last4 == "0005" and card.bin == "378282"


def test_validate_card_checks_number_before_expiry_and_cvc() -> None:
    with pytest.raises(CardValidationError) as info:
        validate_card("4242424242424241", 13, 2000, "1")
    assert info.value.code == "incorrect_number"


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("4000056655665556", "US"),
        ("4000002500000003", "FR"),
        ("4000000760000002", "BR"),
        ("4000008260000000", "GB"),
        ("4242424242424242", "US"),
        ("424242", "US"),
        ("4000000000000002", None),
        ("400000", None),
        ("5105105105105100", None),
    ],
)
def test_card_country_knows_documented_test_bins_only(number: str, country: str | None) -> None:
    assert card_country(number) == country
