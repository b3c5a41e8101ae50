"""Parameter validation: integers are integers, booleans are booleans, metadata has Stripe's limits, and every
problem becomes a Stripe error that names the parameter in bracket form."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from paygate.kit.errors import InvalidRequest
from paygate.kit.params import Expand, Metadata, MetadataUpdate, Params, PositiveInt, StrictBool, param_path, parse


class Amount(Params):
    amount: PositiveInt


class Flag(Params):
    flag: StrictBool


class Meta(Params):
    metadata: Metadata = {}


class MetaUpdate(Params):
    metadata: MetadataUpdate | None = None


class Inner(Params):
    enabled: StrictBool
    mode: str | None = None


class Outer(Params):
    amount: PositiveInt
    currency: str
    options: Inner | None = None
    expand: Expand = []


def _error(model: type[BaseModel], data: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as exc:
        parse(model, data)
    assert exc.value.status == 400
    assert exc.value.type == "invalid_request_error"
    return exc.value


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("1", 1), ("2000", 2000), (" 42 ", 42), (10**15, 10**15)])
def test_positive_int_accepts_ints_and_digit_strings(value: object, expected: int) -> None:
    assert parse(Amount, {"amount": value}).amount == expected


@pytest.mark.parametrize(
    "value",
    [1.0, 10.5, True, False, "1.5", "1.0", "1e3", "-1", -1, 0, "0", "", "abc", "0x10", None, [1], {"a": 1}, "9" * 25],
)
def test_positive_int_rejects_floats_bools_fractions_and_non_positive(value: object) -> None:
    err = _error(Amount, {"amount": value})
    assert err.param == "amount"
    assert err.code == "parameter_invalid"


@pytest.mark.parametrize("value", ["\u0661\u0662", "\u00b2", "\uff11\uff12", "--5"])
def test_positive_int_accepts_only_ascii_digits(value: str) -> None:
    err = _error(Amount, {"amount": value})
    assert err.param == "amount"
    assert "int()" not in err.message  # no Python internals in a client-facing message


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), ("False", False)],
)
def test_strict_bool_accepts_booleans_and_true_false_strings(value: object, expected: bool) -> None:
    assert parse(Flag, {"flag": value}).flag is expected


@pytest.mark.parametrize("value", [1, 0, "1", "0", "yes", "no", "on", "", None, 1.0])
def test_strict_bool_rejects_everything_else(value: object) -> None:
    err = _error(Flag, {"flag": value})
    assert err.param == "flag"
    assert "boolean" in err.message


def test_metadata_accepts_50_keys_of_40_chars_with_500_char_values() -> None:
    meta = {f"{i:02d}".ljust(40, "k"): "v" * 500 for i in range(50)}
    assert parse(Meta, {"metadata": meta}).metadata == meta


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{i}": "v" for i in range(51)}, "at most 50 keys"),
        ({"k" * 41: "v"}, "1-40 characters"),
        ({"": "v"}, "1-40 characters"),
        ({"a[b]": "v"}, "square brackets"),
        ({"k": "v" * 501}, "at most 500 characters"),
        ({"k": True}, "must be strings"),
        ({"k": {"nested": "x"}}, "must be strings"),
        ({"k": ["x"]}, "must be strings"),
        ("not-an-object", "object"),
        (["a", "b"], "object"),
    ],
)
def test_metadata_limits_are_enforced(metadata: object, message: str) -> None:
    err = _error(Meta, {"metadata": metadata})
    assert err.param == "metadata"
    assert message in err.message


def test_metadata_on_create_cannot_be_the_empty_string() -> None:
    assert _error(Meta, {"metadata": ""}).param == "metadata"


def test_metadata_update_accepts_empty_string_as_unset_all() -> None:
    assert parse(MetaUpdate, {"metadata": ""}).metadata == {}


def test_metadata_update_keeps_empty_values_so_the_service_can_unset_single_keys() -> None:
    assert parse(MetaUpdate, {"metadata": {"gone": "", "kept": "1"}}).metadata == {"gone": "", "kept": "1"}


def test_missing_parameter_maps_to_parameter_missing() -> None:
    err = _error(Outer, {"currency": "usd"})
    assert err.code == "parameter_missing"
    assert err.param == "amount"
    assert err.message == "Missing required param: amount."


def test_missing_nested_parameter_is_named_in_bracket_form() -> None:
    err = _error(Outer, {"amount": 1, "currency": "usd", "options": {}})
    assert err.code == "parameter_missing"
    assert err.param == "options[enabled]"


def test_extra_parameter_maps_to_parameter_unknown() -> None:
    err = _error(Outer, {"amount": 1, "currency": "usd", "bogus": "x"})
    assert err.code == "parameter_unknown"
    assert err.param == "bogus"
    assert err.message == "Received unknown parameter: bogus"


def test_extra_nested_parameter_is_named_in_bracket_form() -> None:
    err = _error(Outer, {"amount": 1, "currency": "usd", "options": {"enabled": "true", "bogus": "x"}})
    assert err.code == "parameter_unknown"
    assert err.param == "options[bogus]"


def test_invalid_nested_value_is_named_in_bracket_form() -> None:
    err = _error(Outer, {"amount": 1, "currency": "usd", "options": {"enabled": "maybe"}})
    assert err.code == "parameter_invalid"
    assert err.param == "options[enabled]"


def test_expand_accepts_a_single_string_or_a_list_of_strings() -> None:
    assert parse(Outer, {"amount": 1, "currency": "usd", "expand": "latest_charge"}).expand == ["latest_charge"]
    assert parse(Outer, {"amount": 1, "currency": "usd", "expand": ["a", "b"]}).expand == ["a", "b"]
    assert _error(Outer, {"amount": 1, "currency": "usd", "expand": [1]}).param == "expand"
    assert _error(Outer, {"amount": 1, "currency": "usd", "expand": {"a": "b"}}).param == "expand"


def test_params_models_are_frozen() -> None:
    p = parse(Amount, {"amount": 5})
    with pytest.raises(Exception, match="frozen"):
        p.amount = 6  # type: ignore[misc]


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("amount",), "amount"),
        (("metadata", "order_id"), "metadata[order_id]"),
        (("items", 0, "price"), "items[0][price]"),
    ],
)
def test_param_path_uses_bracket_form(loc: tuple[int | str, ...], expected: str) -> None:
    assert param_path(loc) == expected
