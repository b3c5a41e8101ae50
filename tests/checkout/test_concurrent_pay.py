"""At most one payment per Checkout Session, however many submits arrive at once: one authorization at the
processor, one succeeded PaymentIntent, one ``checkout.session.completed``."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from paygate.checkout.schemas import PayOutcome
from tests.checkout._sessions_support import (
    SLOW,
    VISA,
    attempt_ids,
    authorizations,
    card,
    create_session,
    events_for,
    intent_row,
    session_row,
)
from tests.conftest import Merchant

pytestmark = pytest.mark.db


def _gather_pays(merchant: Merchant, session_id: str, n: int, number: str) -> list[PayOutcome]:
    checkout = merchant.server.gateway.checkout

    async def go() -> list[PayOutcome]:
        return list(
            await asyncio.gather(
                *(checkout.pay(session_id, card(number), return_url="https://r.example/back") for _ in range(n))
            )
        )

    return merchant.server.call(go(), timeout=60)


@pytest.mark.parametrize("n", [2, 10])
@pytest.mark.parametrize("processor_delay", [0.0, 0.3], ids=["instant", "slow-processor"])
def test_concurrent_submits_make_exactly_one_authorization_and_one_payment(
    merchant: Merchant, n: int, processor_delay: float
) -> None:
    server = merchant.server
    sandbox = server.gateway.sandbox
    session = create_session(merchant)
    before = sandbox.slow_seconds
    sandbox.slow_seconds = processor_delay  # the SLOW card waits this long at the processor
    try:
        outcomes = _gather_pays(merchant, session["id"], n, SLOW if processor_delay else VISA)
    finally:
        sandbox.slow_seconds = before
    kinds = Counter(o.kind for o in outcomes)
    assert kinds["succeeded"] == 1, kinds
    assert set(kinds) <= {"succeeded", "in_progress", "already_paid"}, kinds
    if processor_delay:  # every other submit arrived while the first was at the processor
        assert kinds["in_progress"] == n - 1, kinds
    assert authorizations(server, session["payment_intent"]) == 1
    assert len(attempt_ids(server, session["payment_intent"])) == 1
    intent = intent_row(server, session["payment_intent"])
    assert (intent["status"], intent["amount_received"]) == ("succeeded", session["amount_total"])
    row = session_row(server, session["id"])
    assert (row["status"], row["payment_status"], row["pay_claim"]) == ("complete", "paid", None)
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1
    assert len(events_for(server, session["payment_intent"], "payment_intent.succeeded")) == 1


def test_concurrent_submits_with_different_cards_still_pay_once(merchant: Merchant) -> None:
    server = merchant.server
    checkout = server.gateway.checkout
    session = create_session(merchant)
    numbers = [VISA, "5555555555554444", "378282246310005", "6011111111111117"]

    async def go() -> list[PayOutcome]:
        cards = [card(n, cvc="1234" if n.startswith("37") else "123") for n in numbers]
        return list(await asyncio.gather(*(checkout.pay(session["id"], c, return_url="https://r.x/b") for c in cards)))

    outcomes = server.call(go())
    assert [o.kind for o in outcomes].count("succeeded") == 1
    assert authorizations(server, session["payment_intent"]) == 1


def test_submit_after_success_is_already_paid_and_sends_the_customer_to_success_url(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    first = _gather_pays(merchant, session["id"], 1, VISA)[0]
    assert first.kind == "succeeded"
    again = _gather_pays(merchant, session["id"], 1, VISA)[0]
    assert again.kind == "already_paid"
    assert again.redirect_url == first.redirect_url == f"https://shop.example/success?session_id={session['id']}"
    assert authorizations(server, session["payment_intent"]) == 1


def test_ten_concurrent_form_submits_over_http_make_one_payment(merchant: Merchant) -> None:
    """The same guarantee through the whole stack: ten customers' browsers post the hosted page's form at once."""
    from tests.checkout._page_support import Browser, card_fields, reset_limits

    server = merchant.server
    reset_limits(server)
    session = create_session(merchant)
    browsers = [Browser(server) for _ in range(10)]
    tokens = [b.open(session["id"])[1] for b in browsers]
    start = threading.Barrier(len(browsers))
    responses: list[tuple[int, str | None]] = []

    def submit(i: int) -> None:
        start.wait()
        resp = browsers[i].post(f"/c/pay/{session['id']}", {**card_fields(SLOW), "csrf_token": tokens[i]})
        responses.append((resp.status_code, resp.headers.get("location")))

    sandbox = server.gateway.sandbox
    before = sandbox.slow_seconds
    sandbox.slow_seconds = 0.5
    try:
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(browsers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        sandbox.slow_seconds = before
        for b in browsers:
            b.close()
    assert len(responses) == 10
    redirects = [loc for status, loc in responses if status == 303]
    assert redirects == [f"https://shop.example/success?session_id={session['id']}"], responses
    assert all(status in (303, 409) for status, _ in responses), responses  # the others: payment in progress / paid
    assert authorizations(server, session["payment_intent"]) == 1
    assert intent_row(server, session["payment_intent"])["status"] == "succeeded"
    assert session_row(server, session["id"])["status"] == "complete"
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1
