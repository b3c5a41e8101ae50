"""Rejected session requests are typed 400s (Stripe's envelope, the offending ``param``) and write nothing: no
session, no PaymentIntent, no event, and no stored idempotent reply."""

from __future__ import annotations

from typing import Any

import pytest

from paygate.kit.clock import clock
from tests.checkout._sessions_support import count_rows, session_form
from tests.conftest import Merchant

pytestmark = pytest.mark.db

LINE = "line_items[0]"


def _without_lines(form: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in form.items() if not k.startswith("line_items")}


def _second_line(currency: str = "usd", **kw: str) -> dict[str, str]:
    line = {
        "line_items[1][price_data][currency]": currency,
        "line_items[1][price_data][unit_amount]": "100",
        "line_items[1][price_data][product_data][name]": "Extra",
        "line_items[1][quantity]": "1",
    }
    line.update(kw)
    return line


CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    # (name, form, param, code)
    ("mode setup", session_form(mode="setup"), "mode", "parameter_invalid"),
    ("mode subscription", session_form(mode="subscription"), "mode", "parameter_invalid"),
    ("mode missing", session_form(mode=None), "mode", "parameter_missing"),
    ("success_url missing", session_form(success_url=None), "success_url", "parameter_missing"),
    ("success_url relative", session_form(success_url="/thanks"), "success_url", "parameter_invalid"),
    ("success_url javascript", session_form(success_url="javascript:alert(1)"), "success_url", "parameter_invalid"),
    ("cancel_url ftp", session_form(cancel_url="ftp://x.example/"), "cancel_url", "parameter_invalid"),
    ("no line items", _without_lines(session_form()), "line_items", "parameter_missing"),
    ("bad currency", session_form(**{f"{LINE}[price_data][currency]": "xyz"}), f"{LINE}[price_data][currency]", None),
    (
        "mismatched currencies",
        session_form(**_second_line("eur")),
        "line_items[1][price_data][currency]",
        "parameter_invalid",
    ),
    ("quantity 0", session_form(**{f"{LINE}[quantity]": "0"}), f"{LINE}[quantity]", "parameter_invalid"),
    ("quantity missing", session_form(**{f"{LINE}[quantity]": None}), f"{LINE}[quantity]", "parameter_missing"),
    ("quantity float", session_form(**{f"{LINE}[quantity]": "1.5"}), f"{LINE}[quantity]", "parameter_invalid"),
    (
        "negative unit amount",
        session_form(**{f"{LINE}[price_data][unit_amount]": "-5"}),
        f"{LINE}[price_data][unit_amount]",
        "parameter_invalid",
    ),
    (
        "unit amount missing",
        session_form(**{f"{LINE}[price_data][unit_amount]": None}),
        f"{LINE}[price_data][unit_amount]",
        "parameter_missing",
    ),
    (
        "product name missing",
        session_form(
            **{f"{LINE}[price_data][product_data][name]": None, f"{LINE}[price_data][product_data][description]": "d"}
        ),
        f"{LINE}[price_data][product_data][name]",
        "parameter_missing",
    ),
    (
        "unknown product field",
        session_form(**{f"{LINE}[price_data][product_data][colour]": "red"}),
        f"{LINE}[price_data][product_data][colour]",
        "parameter_unknown",
    ),
    ("price id", session_form(**{f"{LINE}[price]": "price_123"}), f"{LINE}[price]", "parameter_invalid"),
    (
        "total below the minimum charge",
        session_form(**{f"{LINE}[price_data][unit_amount]": "10", f"{LINE}[quantity]": "1"}),
        "line_items",
        "amount_too_small",
    ),
    ("unknown customer", session_form(customer="cus_doesnotexist"), "customer", "resource_missing"),
    (
        "customer and customer_email",
        session_form(customer="cus_x", customer_email="a@example.com"),
        "customer_email",
        "parameter_invalid",
    ),
    ("bad email", session_form(customer_email="not-an-email"), "customer_email", "parameter_invalid"),
    ("bad locale", session_form(locale="xx-YY"), "locale", "parameter_invalid"),
    ("unknown parameter", session_form(shipping_options="x"), "shipping_options", "parameter_unknown"),
    (
        "amount with line items",
        session_form(amount="1000", currency="usd"),
        "amount",
        "parameter_invalid",
    ),
    ("amount without currency", {**_without_lines(session_form()), "amount": "1000"}, "currency", "parameter_missing"),
    (
        "amount zero",
        {**_without_lines(session_form()), "amount": "0", "currency": "usd"},
        "amount",
        "parameter_invalid",
    ),
    ("expand unknown", session_form(**{"expand[0]": "customer"}), "expand", None),
]


@pytest.mark.parametrize(("name", "form", "param", "code"), CASES, ids=[c[0] for c in CASES])
def test_invalid_create_is_a_typed_400_and_writes_nothing(
    merchant: Merchant, name: str, form: dict[str, Any], param: str, code: str | None
) -> None:
    before = count_rows(merchant.server, merchant.id)
    resp = merchant.http.post("/v1/checkout/sessions", data=form, headers={"Idempotency-Key": f"bad-{name}"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert count_rows(merchant.server, merchant.id) == before
    # nothing was stored under the key: the same key with a valid request creates a session
    ok = merchant.http.post("/v1/checkout/sessions", data=session_form(), headers={"Idempotency-Key": f"bad-{name}"})
    assert ok.status_code == 200, ok.text
    assert "Idempotent-Replayed" not in ok.headers


# "a day and a bit" keeps a margin: the server reads its clock later than the test (a second boundary crossed in
# between made 86,401 exactly a day on the server's clock, and the session was rightly accepted)
@pytest.mark.parametrize("seconds_ahead", [0, 299, 86430, -60])
def test_expires_at_outside_five_minutes_to_a_day_is_rejected(merchant: Merchant, seconds_ahead: int) -> None:
    before = count_rows(merchant.server, merchant.id)
    resp = merchant.post("/v1/checkout/sessions", session_form(expires_at=str(clock.now() + seconds_ahead)))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == "expires_at"
    assert count_rows(merchant.server, merchant.id) == before


@pytest.mark.parametrize("seconds_ahead", [305, 3600, 86390])
def test_expires_at_inside_the_window_is_kept(merchant: Merchant, seconds_ahead: int) -> None:
    at = clock.now() + seconds_ahead
    resp = merchant.post("/v1/checkout/sessions", session_form(expires_at=str(at)))
    assert resp.status_code == 200, resp.text
    assert resp.json()["expires_at"] == at


def test_stripe_sdk_sees_invalid_request_errors(merchant: Merchant) -> None:
    import stripe

    with pytest.raises(stripe.InvalidRequestError) as info:
        merchant.stripe.v1.checkout.sessions.create(
            params={"mode": "payment", "success_url": "https://x.example/ok", "line_items": []}
        )
    assert info.value.http_status == 400
