"""Request bodies decode the way Stripe's do: bracketed form keys or JSON, and anything malformed is a typed 400."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit.errors import InvalidRequest
from paygate.kit.forms import MAX_BODY_BYTES, MAX_INDEX, decode_body, decode_form

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("amount=100&currency=usd", {"amount": "100", "currency": "usd"}),
        ("metadata[a]=1", {"metadata": {"a": "1"}}),
        ("metadata[a]=1&metadata[b]=", {"metadata": {"a": "1", "b": ""}}),
        ("expand[0]=x&expand[1]=y", {"expand": ["x", "y"]}),
        ("expand[1]=y&expand[0]=x", {"expand": ["x", "y"]}),
        ("expand[]=x", {"expand": ["x"]}),
        ("expand[]=x&expand[]=y", {"expand": ["x", "y"]}),
        ("a[b][c]=1", {"a": {"b": {"c": "1"}}}),
        ("items[0][price]=p&items[1][price]=q", {"items": [{"price": "p"}, {"price": "q"}]}),
        ("metadata[order%20id]=4%262", {"metadata": {"order id": "4&2"}}),
        ("description=a+b", {"description": "a b"}),
        (f"a[{MAX_INDEX}]=x", {"a": ["x"]}),
        ("", {}),
    ],
)
def test_decode_form_builds_stripe_nested_structures(raw: str, expected: dict[str, Any]) -> None:
    assert decode_form(raw) == expected


def test_decode_form_keeps_values_as_strings() -> None:
    assert decode_form("amount=10&confirm=true") == {"amount": "10", "confirm": "true"}


@pytest.mark.parametrize("key", ["[x]", "a]", "a[b", "a[b]c", "a[[b]]", "a[b]]", "]"])
def test_decode_form_rejects_malformed_keys(key: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        decode_form(f"{key}=1")
    assert exc.value.status == 400
    assert exc.value.type == "invalid_request_error"
    assert exc.value.param == key
    assert "Invalid parameter name" in exc.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "a=1&a[b]=2",  # scalar, then object
        "a[b]=2&a=1",  # object, then scalar
        "a[b]=1&a[b][c]=2",
        "a[b][c]=2&a[b]=1",
        "expand=x&expand[]=y",
    ],
)
def test_decode_form_rejects_a_key_used_as_both_value_and_object(raw: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        decode_form(raw)
    assert "Conflicting values" in exc.value.message
    assert exc.value.param


@pytest.mark.parametrize("raw", ["a[0]=x&a[b]=y", "a[b]=y&a[0]=x", "a[]=x&a[b]=y", "a[b][0]=x&a[b][c]=y"])
def test_decode_form_rejects_mixing_list_indices_and_object_keys(raw: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        decode_form(raw)
    assert exc.value.status == 400
    assert exc.value.param


@pytest.mark.parametrize("index", [MAX_INDEX + 1, 10**6, 10**30])
def test_decode_form_rejects_huge_array_indices(index: int) -> None:
    with pytest.raises(InvalidRequest) as exc:
        decode_form(f"expand[{index}]=x")
    assert "index too large" in exc.value.message
    assert exc.value.param == f"expand[{index}]"


def test_decode_form_truncates_long_parameter_names_in_errors() -> None:
    key = "a" * 500 + "]"
    with pytest.raises(InvalidRequest) as exc:
        decode_form(f"{key}=1")
    assert exc.value.param is not None
    assert len(exc.value.param) <= 64


@pytest.mark.parametrize(
    ("raw", "ctype", "expected"),
    [
        (b'{"amount": 100, "metadata": {"a": "1"}}', "application/json", {"amount": 100, "metadata": {"a": "1"}}),
        (b'{"amount": 100}', "application/json; charset=utf-8", {"amount": 100}),
        (b'{"amount": 100}', "Application/JSON", {"amount": 100}),
        (b"amount=100&expand[]=latest_charge", FORM, {"amount": "100", "expand": ["latest_charge"]}),
        (b"amount=100", None, {"amount": "100"}),
        (b"", "application/json", {}),
        (b"", FORM, {}),
        (b"   \n", "application/json", {}),
    ],
)
def test_decode_body_by_content_type(raw: bytes, ctype: str | None, expected: dict[str, Any]) -> None:
    assert decode_body(raw, ctype) == expected


def test_decode_body_keeps_json_types_for_the_schema_layer_to_judge() -> None:
    assert decode_body(b'{"amount": 10.5, "confirm": true}', "application/json") == {"amount": 10.5, "confirm": True}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "Invalid JSON body"),
        (b"[1, 2]", "must be an object"),
        (b'"amount"', "must be an object"),
        (b"null", "must be an object"),
    ],
)
def test_decode_body_rejects_bad_json(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        decode_body(raw, "application/json")


def test_decode_body_rejects_non_utf8_forms() -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        decode_body(b"description=\xff\xfe", FORM)


def test_decode_body_rejects_oversized_bodies() -> None:
    with pytest.raises(InvalidRequest, match="too large"):
        decode_body(b"a=" + b"x" * MAX_BODY_BYTES, FORM)


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)  # "0", "12" are keys too


@given(metadata=st.dictionaries(_keys, _values, max_size=10), expand=st.lists(_names, max_size=5))
def test_decode_form_round_trips_what_the_stripe_sdk_encodes(metadata: dict[str, str], expand: list[str]) -> None:
    from urllib.parse import urlencode

    pairs = [(f"metadata[{k}]", v) for k, v in metadata.items()]
    pairs += [(f"expand[{i}]", v) for i, v in enumerate(expand)]
    decoded = decode_form(urlencode(pairs))
    expected: dict[str, Any] = {}
    if metadata:
        expected["metadata"] = metadata
    if expand:
        expected["expand"] = expand
    assert decoded == expected


@given(raw=st.text(alphabet="ab=&+%2F0[]\u00e9 ", max_size=40))
def test_form_pairs_are_exactly_what_parse_qsl_reads(raw: str) -> None:
    from urllib.parse import parse_qsl

    from paygate.kit.forms import MAX_FIELDS, _pairs

    assert _pairs(raw) == parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_FIELDS)


def test_decode_form_refuses_more_fields_than_parse_qsl_allows() -> None:
    from paygate.kit.forms import MAX_FIELDS

    assert len(decode_form("&".join(f"k{i}=v" for i in range(MAX_FIELDS)))) == MAX_FIELDS
    with pytest.raises(ValueError, match="Max number of fields"):
        decode_form("&".join(f"k{i}=v" for i in range(MAX_FIELDS + 1)))


def test_metadata_keys_that_look_like_indices_stay_keys_at_any_depth() -> None:
    decoded = decode_form("metadata[0]=a&metadata[7]=b&payment_method_data[metadata][1]=c&items[0][metadata][2]=d")
    assert decoded == {
        "metadata": {"0": "a", "7": "b"},
        "payment_method_data": {"metadata": {"1": "c"}},
        "items": [{"metadata": {"2": "d"}}],
    }
