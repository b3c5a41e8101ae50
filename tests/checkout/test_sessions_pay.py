"""The page's service methods: ``load_page``, ``pay`` (declines, invalid card data, 3-D Secure) and
``finish_return``, and that a submitted card number or CVC never reaches an event or a session row."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from paygate.checkout.tables import checkout_line_items, checkout_sessions
from paygate.db.tables import events, payment_attempts, payment_intents
from tests.checkout._sessions_support import (
    DECLINE,
    INSUFFICIENT,
    THREE_DS,
    VISA,
    authorizations,
    card,
    create_session,
    events_for,
    intent_row,
    session_row,
)
from tests.conftest import Merchant
from tests.support.server import RunningServer

pytestmark = pytest.mark.db

RETURN = "https://paygate.example/c/pay/return"


def _pay(server: RunningServer, session_id: str, number: str = VISA, **kw: Any) -> Any:
    return server.call(server.gateway.checkout.pay(session_id, card(number, **kw), return_url=RETURN))


def _complete_challenge(url: str, *, approve: bool) -> httpx2.Response:
    """Answer the sandbox's 3-D Secure test challenge as the customer's browser would."""
    with httpx2.Client(timeout=30, follow_redirects=False) as browser:
        assert browser.get(url).status_code == 200
        return browser.post(url, data={"outcome": "approve" if approve else "fail"})


def test_load_page_gives_the_page_everything_it_needs(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(
        merchant,
        locale="de",
        customer_email="kunde@example.com",
        **{"line_items[0][price_data][product_data][description]": "Cotton, size M"},
    )
    page = server.call(server.gateway.checkout.load_page(session["id"]))
    assert page is not None
    assert page.id == session["id"] and page.livemode is False
    assert (page.status, page.payment_status) == ("open", "unpaid")
    assert page.merchant_name == "Test Merchant"
    assert (page.currency, page.amount_total) == ("usd", 3000)
    assert [(i.description, i.quantity, i.unit_amount, i.amount_total) for i in page.line_items] == [
        ("T-shirt", 2, 1500, 3000)
    ]
    assert page.locale == "de" and page.customer_email == "kunde@example.com"
    assert page.expires_at == session["expires_at"]
    assert page.success_url == f"https://shop.example/success?session_id={session['id']}"
    assert page.cancel_url == "https://shop.example/cart"
    assert page.frame_ancestors == []


def test_load_page_of_an_unknown_session_is_none(server: RunningServer) -> None:
    assert server.call(server.gateway.checkout.load_page("cs_test_doesnotexist")) is None
    outcome = server.call(server.gateway.checkout.pay("cs_test_doesnotexist", card(), return_url=RETURN))
    assert outcome.kind == "not_found"
    assert server.call(server.gateway.checkout.finish_return("cs_test_doesnotexist")).kind == "not_found"


def test_decline_keeps_the_session_open_and_another_card_then_pays(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    declined = _pay(server, session["id"], DECLINE)
    assert declined.kind == "declined"
    assert declined.message == "Your card was declined."
    assert declined.decline_code == "generic_decline"
    assert session_row(server, session["id"])["status"] == "open"
    assert session_row(server, session["id"])["pay_claim"] is None
    assert intent_row(server, session["payment_intent"])["status"] == "requires_payment_method"
    funds = _pay(server, session["id"], INSUFFICIENT)
    assert (funds.kind, funds.decline_code) == ("declined", "insufficient_funds")
    paid = _pay(server, session["id"], VISA)
    assert paid.kind == "succeeded"
    assert authorizations(server, session["payment_intent"]) == 3
    intent = intent_row(server, session["payment_intent"])
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 3000)
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"number": "4242424242424241"}, "number"),
        ({"number": "1234"}, "number"),
        ({"exp_month": 13}, "exp_month"),
        ({"exp_year": 2019}, "exp_year"),
        ({"cvc": "1"}, "cvc"),
    ],
)
def test_invalid_card_data_names_the_field_and_never_reaches_the_processor(
    merchant: Merchant, kw: dict[str, Any], param: str
) -> None:
    from paygate.checkout.schemas import CardInput

    server = merchant.server
    session = create_session(merchant)
    data: dict[str, Any] = {"number": VISA, "exp_month": 12, "exp_year": 2034, "cvc": "123"} | kw
    outcome = server.call(server.gateway.checkout.pay(session["id"], CardInput(**data), return_url=RETURN))
    assert outcome.kind == "invalid"
    assert outcome.param == param
    assert outcome.message and str(data["number"]) not in outcome.message
    assert authorizations(server, session["payment_intent"]) == 0
    assert session_row(server, session["id"])["status"] == "open"
    assert _pay(server, session["id"]).kind == "succeeded"  # the claim was released


def test_three_d_secure_then_finish_return_completes_the_session(merchant: Merchant) -> None:
    server = merchant.server
    checkout = server.gateway.checkout
    session = create_session(merchant)
    outcome = _pay(server, session["id"], THREE_DS)
    assert outcome.kind == "requires_action"
    assert outcome.redirect_url and outcome.redirect_url.startswith(f"{server.base_url}/sandbox/3ds/")
    assert server.call(checkout.finish_return(session["id"])).kind == "requires_action"  # not answered yet
    again = _pay(server, session["id"], VISA)  # a second submit while the challenge is open pays nothing
    assert (again.kind, again.redirect_url) == ("requires_action", outcome.redirect_url)

    answer = _complete_challenge(outcome.redirect_url, approve=True)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(RETURN + "?")
    assert "redirect_status=succeeded" in answer.headers["location"]

    done = server.call(checkout.finish_return(session["id"]))
    assert done.kind == "succeeded"
    assert done.redirect_url == f"https://shop.example/success?session_id={session['id']}"
    assert server.call(checkout.finish_return(session["id"])).kind == "succeeded"  # a reload changes nothing
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1
    assert authorizations(server, session["payment_intent"]) == 1
    assert intent_row(server, session["payment_intent"])["return_url"] == RETURN


def test_failed_three_d_secure_lets_the_customer_try_another_card(merchant: Merchant) -> None:
    server = merchant.server
    checkout = server.gateway.checkout
    session = create_session(merchant)
    outcome = _pay(server, session["id"], THREE_DS)
    assert _complete_challenge(outcome.redirect_url, approve=False).status_code == 303
    back = server.call(checkout.finish_return(session["id"]))
    assert back.kind == "declined"
    assert back.message == "The customer failed authentication."
    assert session_row(server, session["id"])["status"] == "open"
    assert _pay(server, session["id"], VISA).kind == "succeeded"


def test_load_page_completes_a_session_whose_payment_succeeded_after_three_d_secure(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    outcome = _pay(server, session["id"], THREE_DS)
    _complete_challenge(outcome.redirect_url, approve=True)
    page = server.call(server.gateway.checkout.load_page(session["id"]))
    assert page is not None and (page.status, page.payment_status) == ("complete", "paid")
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1


PAN, CVC = "4242424242424242", "739"
DECLINED_PAN, DECLINED_CVC = "4000000000000002", "518"


def _leaks(text: str) -> list[str]:
    found = [f"PAN {p[-4:]}" for p in (PAN, DECLINED_PAN) if p in text]
    found += [f"CVC {c}" for c in (CVC, DECLINED_CVC) if re.search(rf"(?<![0-9A-Za-z_\-]){c}(?![0-9A-Za-z_\-])", text)]
    return found


def test_card_number_and_cvc_never_reach_events_or_session_rows(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    assert _pay(server, session["id"], DECLINED_PAN, cvc=DECLINED_CVC, name="Card Holder").kind == "declined"
    assert _pay(server, session["id"], PAN, cvc=CVC, name="Card Holder", postal_code="10115").kind == "succeeded"

    async def dump() -> list[str]:
        out: list[str] = []
        async with server.gateway.db.read() as conn:
            for table, where in (
                (events, events.c.merchant_id == merchant.id),
                (checkout_sessions, checkout_sessions.c.id == session["id"]),
                (checkout_line_items, checkout_line_items.c.session_id == session["id"]),
                (payment_intents, payment_intents.c.id == session["payment_intent"]),
                (payment_attempts, payment_attempts.c.intent_id == session["payment_intent"]),
            ):
                for row in (await conn.execute(select(table).where(where))).mappings():
                    out.append(f"{table.name}: " + " | ".join(str(v) for v in row.values()))
        return out

    rows = server.call(dump())
    assert any(r.startswith("events:") and "checkout.session.completed" in r for r in rows)
    assert any(r.startswith("checkout_sessions:") and "Card Holder" in r for r in rows)  # the dump is real
    problems = [f"{row.split(':', 1)[0]}: {leak}" for row in rows for leak in _leaks(row)]
    assert problems == []
    api = merchant.get(f"/v1/checkout/sessions/{session['id']}", params={"expand[0]": "payment_intent"}).text
    assert _leaks(api) == []
