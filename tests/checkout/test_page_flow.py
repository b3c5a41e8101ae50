"""The hosted page's flows over real HTTP, without JavaScript (plain form posts): success, declines, 3-D Secure,
validation, not-found / expired / already-paid pages, money formatting, and the one-payment guarantee."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest

from paygate.kit.clock import clock
from tests.checkout._page_support import (
    AMEX,
    CANCEL_URL,
    INSUFFICIENT,
    MASTERCARD,
    SLOW,
    THREE_DS,
    TIMEOUT,
    VISA,
    Browser,
    Tags,
    authorizations,
    card_fields,
    create_session,
    intent_status,
    reset_limits,
    session_row,
    token_of,
)
from tests.conftest import Merchant
from tests.support.server import RunningServer


@pytest.fixture(autouse=True)
def _fresh_limits(server: RunningServer) -> None:
    reset_limits(server)


def test_page_shows_merchant_items_and_total_formatted_for_the_locale(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant, locale="fr")
    with Browser(server) as browser:
        page, _ = browser.open(session["id"])
    html = page.text
    assert "Test Merchant" in html and "Coffee beans, 250 g" in html and "Shipping" in html
    assert "41,90\u00a0€" in html and "18,50\u00a0€" in html and "37,00\u00a0€" in html  # fr: 41,90 €
    assert '<html lang="en"' in html  # the page text is English; amounts carry their own lang
    assert 'lang="fr"' in html


def test_accept_language_decides_the_format_when_the_session_locale_is_auto(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant, locale="auto")
    with Browser(server, **{"Accept-Language": "de-CH;q=0.4, en-US;q=0.9"}) as us:
        assert "€41.90" in us.open(session["id"])[0].text
    with Browser(server, **{"Accept-Language": "de-DE,de;q=0.9"}) as de:
        page = de.open(session["id"])[0].text
        assert "41,90\u00a0€" in page
        assert '<option value="DE" selected>' in page  # billing country pre-selected from the locale
    yen = create_session(
        merchant,
        **{
            "line_items[0][price_data][currency]": "jpy",
            "line_items[0][price_data][unit_amount]": "1500",
            "line_items[1][price_data][currency]": "jpy",
            "line_items[1][price_data][unit_amount]": "500",
        },
    )
    with Browser(server, **{"Accept-Language": "en-US"}) as us:
        assert "¥3,500" in us.open(yen["id"])[0].text  # zero-decimal currency: no ".00"


def test_form_fields_are_labelled_with_autocomplete_and_described_errors(
    server: RunningServer, merchant: Merchant
) -> None:
    with Browser(server) as browser:
        page, _ = browser.open(create_session(merchant)["id"])
    tags = Tags(page.text)
    expected = {
        "number": "cc-number",
        "exp": "cc-exp",
        "cvc": "cc-csc",
        "name": "cc-name",
        "country": "country",
        "postal_code": "postal-code",
    }
    labels = {attrs.get("for") for attrs in tags.find("label")}
    for field, autocomplete in expected.items():
        attrs = tags.by_id(field)
        assert attrs["autocomplete"] == autocomplete
        assert attrs["name"] == field
        assert field in labels
        assert f"{field}-error" in (attrs.get("aria-describedby") or "")
    assert len(tags.find("fieldset")) == 2 and len(tags.find("legend")) == 2
    assert tags.by_id("form-alert")["role"] == "alert"
    assert tags.by_id("countdown-time")["role"] == "timer"
    cancel = [a for a in tags.find("a") if a.get("href") == CANCEL_URL]
    assert cancel, "cancel link to cancel_url"


def test_success_redirects_to_success_url_and_completes_the_session(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp = browser.pay(session["id"], card_fields(VISA))
        assert resp.status_code == 303
        assert resp.headers["location"] == f"https://shop.example/thanks?session={session['id']}"
        assert session_row(server, session["id"])["status"] == "complete"
        assert intent_status(server, session["payment_intent"]) == "succeeded"
        paid = browser.get(f"/c/pay/{session['id']}")
        assert paid.status_code == 200
        assert "already been paid" in paid.text and "Continue to Test Merchant" in paid.text
        resubmit = browser.post(f"/c/pay/{session['id']}", {**card_fields(MASTERCARD), "csrf_token": "x"})
        assert resubmit.status_code == 409 and "already been paid" in resubmit.text
    assert authorizations(server, session["payment_intent"]) == 1


def test_decline_rerenders_the_form_with_the_message_then_another_card_succeeds(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        declined = browser.pay(session["id"], card_fields(INSUFFICIENT, name="Jane Q. Doe", postal_code="80331"))
        assert declined.status_code == 422
        assert "Payment declined" in declined.text and "insufficient funds" in declined.text
        assert "try another card" in declined.text
        tags = Tags(declined.text)
        assert tags.by_id("name")["value"] == "Jane Q. Doe"  # name, country and postal code are kept
        assert tags.by_id("postal_code")["value"] == "80331"
        assert "value" not in tags.by_id("number") and "value" not in tags.by_id("cvc")
        assert "value" not in tags.by_id("exp")
        assert session_row(server, session["id"])["status"] == "open"
        second = browser.pay(session["id"], card_fields(AMEX, cvc="2957"), token=token_of(declined.text))
        assert second.status_code == 303
    assert session_row(server, session["id"])["status"] == "complete"


def test_invalid_card_fields_are_rejected_before_anything_is_charged(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        bad = browser.pay(
            session["id"],
            card_fields("4242424242424241", exp="01 / 20", cvc="12", name="", country="ZZ", postal_code=""),
        )
        assert bad.status_code == 422
        tags = Tags(bad.text)
        for field in ("number", "exp", "cvc", "name", "country"):
            assert tags.by_id(field).get("aria-invalid") == "true", field
        assert "Your card number is invalid." in bad.text
        assert "Your card&#39;s expiry date is in the past." in bad.text
        assert "Your card&#39;s security code is incomplete." in bad.text
        assert "Please correct 5 fields" in bad.text
        us = browser.pay(session["id"], card_fields(VISA, country="US", postal_code=""))
        assert us.status_code == 422 and "Enter your postal code." in us.text
    assert authorizations(server, session["payment_intent"]) == 0


def test_three_d_secure_challenge_then_return_completes_the_payment(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp = browser.pay(session["id"], card_fields(THREE_DS))
        assert resp.status_code == 303
        challenge = resp.headers["location"]
        assert challenge.startswith(f"{server.base_url}/sandbox/3ds/")
        back = browser.post(urlsplit(challenge).path, {"outcome": "approve"})
        assert back.status_code == 303
        assert back.headers["location"].startswith(f"{server.base_url}/c/pay/{session['id']}/return")
        done = browser.get(back.headers["location"])
        # a confirmation that moves on by itself: a 303 here would be checked against the challenge page's CSP
        assert done.status_code == 200 and "Payment complete" in done.text
        refresh = Tags(done.text).find("meta")
        target = f"https://shop.example/thanks?session={session['id']}"
        assert {"http-equiv": "refresh", "content": f"0; url={target}"} in refresh
        assert f'href="{target}"' in done.text
    assert session_row(server, session["id"])["status"] == "complete"


def test_failed_three_d_secure_returns_to_the_form_to_try_again(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp = browser.pay(session["id"], card_fields(THREE_DS))
        back = browser.post(urlsplit(resp.headers["location"]).path, {"outcome": "fail"})
        page = browser.get(back.headers["location"])
        assert page.status_code == 200
        assert "Your payment was not completed" in page.text
        assert Tags(page.text).by_id("pay-form")["data-clean-url"] == f"/c/pay/{session['id']}"
        assert session_row(server, session["id"])["status"] == "open"
        retry = browser.pay(session["id"], card_fields(VISA), token=token_of(page.text))
        assert retry.status_code == 303


def test_unknown_sessions_and_paths_get_html_404_pages(server: RunningServer) -> None:
    with Browser(server) as browser:
        for path in ("/c/pay/cs_test_" + "Q" * 32, "/c/pay/not-a-session", "/c/pay/cs_test_abc/extra", "/c/nothing"):
            resp = browser.get(path)
            assert resp.status_code == 404, path
            assert resp.headers["content-type"].startswith("text/html"), path
            assert "Checkout not found" in resp.text and '"error"' not in resp.text
        post = browser.post("/c/pay/cs_test_" + "Q" * 32, card_fields(VISA))
        assert post.status_code == 404


def test_expired_session_answers_410_and_cannot_be_paid(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        _, token = browser.open(session["id"])
        before = clock.offset
        clock.offset = before + (session["expires_at"] - clock.now()) + 3600
        try:
            page = browser.get(f"/c/pay/{session['id']}")
            assert page.status_code == 410
            assert "This checkout has expired" in page.text and "You have not been charged" in page.text
            assert f'href="{CANCEL_URL}"' in page.text
            post = browser.post(f"/c/pay/{session['id']}", {**card_fields(VISA), "csrf_token": token})
            assert post.status_code == 410
        finally:
            clock.offset = before
    assert authorizations(server, session["payment_intent"]) == 0
    assert session_row(server, session["id"])["status"] == "expired"


def test_page_routes_are_not_in_the_openapi_schema(server: RunningServer) -> None:
    with Browser(server) as browser:
        paths = browser.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/c/")]


def _race_two_submits(server: RunningServer, session_id: str, number: str) -> list[int]:
    """Two browsers open the page, then post the form at the same moment; returns both status codes."""
    browsers = [Browser(server), Browser(server)]
    tokens = [b.open(session_id)[1] for b in browsers]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def submit(i: int) -> None:
        start.wait()
        resp = browsers[i].post(f"/c/pay/{session_id}", {**card_fields(number), "csrf_token": tokens[i]})
        statuses.append(resp.status_code)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for b in browsers:
        b.close()
    return statuses


def test_two_concurrent_form_submits_on_one_session_make_exactly_one_payment(
    server: RunningServer, merchant: Merchant
) -> None:
    sandbox = server.gateway.sandbox
    before = sandbox.slow_seconds
    sandbox.slow_seconds = 0.5  # the SLOW card holds the first submit at the processor while the second arrives
    try:
        for _ in range(3):
            session = create_session(merchant)
            statuses = _race_two_submits(server, session["id"], SLOW)
            assert sorted(statuses) == [303, 409], statuses  # one paid; the other: "already being processed"
            assert authorizations(server, session["payment_intent"]) == 1
            assert session_row(server, session["id"])["status"] == "complete"
    finally:
        sandbox.slow_seconds = before


def test_unknown_processor_outcome_shows_a_self_refreshing_processing_page(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp = browser.pay(session["id"], card_fields(TIMEOUT))  # the processor never answers
        assert resp.status_code == 202
        assert "Your payment is processing" in resp.text and "please do not pay" in resp.text
        refresh = [m for m in Tags(resp.text).find("meta") if m.get("http-equiv") == "refresh"]
        assert refresh and refresh[0]["content"] == f"5; url=/c/pay/{session['id']}/return"
        again = browser.pay(session["id"], card_fields(VISA))  # a second card cannot be charged meanwhile
        assert again.status_code in (202, 409), again.status_code
    assert authorizations(server, session["payment_intent"]) == 1  # only the unanswered one
    assert session_row(server, session["id"])["status"] == "open"
