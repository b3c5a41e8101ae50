"""Card numbers and CVCs posted to the hosted page never come back: not in any response (body or headers) on any
path -- success, decline, invalid fields, CSRF rejection, rate limiting, 3-D Secure -- and not in any log line."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.checkout._page_support import (
    AMEX,
    DECLINE,
    INSUFFICIENT,
    THREE_DS,
    VISA,
    Browser,
    card_fields,
    create_session,
    reset_limits,
)
from tests.conftest import Merchant
from tests.support.server import RunningServer

LUHN_BAD = "4242424242424241"
PANS = [VISA, DECLINE, INSUFFICIENT, THREE_DS, AMEX, LUHN_BAD]
CVCS = ["739", "518", "2957", "864", "391", "6142"]


def _grouped(pan: str) -> str:
    return " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))


def _leaks(text: str) -> list[str]:
    found = [f"PAN …{p[-4:]}" for p in PANS if p in text or _grouped(p) in text]
    found += [f"CVC {c}" for c in CVCS if re.search(rf"(?<![0-9A-Za-z_\-]){c}(?![0-9A-Za-z_\-])", text)]
    return found


@pytest.fixture(autouse=True)
def _fresh_limits(server: RunningServer) -> None:
    reset_limits(server)


def _text(resp: httpx2.Response) -> str:
    return resp.text + "\n" + "\n".join(f"{k}: {v}" for k, v in resp.headers.items())


def test_posted_pan_and_cvc_never_appear_in_responses_or_logs(
    server: RunningServer, merchant: Merchant, rendered_logs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[httpx2.Response] = []
    with Browser(server) as browser:
        # invalid fields (Luhn), then a decline, then insufficient funds, then success -- on one session
        session = create_session(merchant)
        sid = session["id"]
        _, token = browser.open(sid)
        for pan, cvc in ((LUHN_BAD, CVCS[5]), (DECLINE, CVCS[1]), (INSUFFICIENT, CVCS[4])):
            fields = card_fields(_grouped(pan), cvc=cvc)  # grouped, as the page's script formats it
            responses.append(browser.post(f"/c/pay/{sid}", {**fields, "csrf_token": token}))
        # a CVC of the wrong length for an Amex card: a field error must not quote it
        responses.append(browser.post(f"/c/pay/{sid}", {**card_fields(AMEX, cvc=CVCS[0]), "csrf_token": token}))
        # CSRF rejection with a full card
        responses.append(browser.post(f"/c/pay/{sid}", {**card_fields(VISA, cvc=CVCS[0]), "csrf_token": "forged"}))
        responses.append(browser.post(f"/c/pay/{sid}", {**card_fields(AMEX, cvc=CVCS[2]), "csrf_token": token}))
        assert [r.status_code for r in responses] == [422, 422, 422, 422, 403, 303]
        # 3-D Secure: challenge, failed authentication, back on the page
        three_ds = create_session(merchant)
        challenge = browser.pay(three_ds["id"], card_fields(THREE_DS, cvc=CVCS[3]))
        assert challenge.status_code == 303
        back = browser.post(urlsplit(challenge.headers["location"]).path, {"outcome": "fail"})
        responses += [challenge, back, browser.get(back.headers["location"])]
        # rate limited, with a card in the body
        limited = create_session(merchant)
        _, token = browser.open(limited["id"])
        for _ in range(11):
            last = browser.post(f"/c/pay/{limited['id']}", {**card_fields(LUHN_BAD, cvc=CVCS[5]), "csrf_token": token})
            responses.append(last)
        assert last.status_code == 429
        # a body too large to read, with card data in it
        huge = {**card_fields(VISA, cvc=CVCS[0]), "csrf_token": token, "name": "x" * 20000}
        responses.append(browser.post(f"/c/pay/{create_session(merchant)['id']}", huge))

    problems = [f"response {i} ({r.status_code}): {leak}" for i, r in enumerate(responses) for leak in _leaks(_text(r))]
    logs = rendered_logs + [r.getMessage() for r in caplog.records]
    assert any("checkout_page_submit" in line for line in rendered_logs), "the log tap saw the page's own logs"
    problems += [f"log: {leak} in {line[:200]}" for line in logs for leak in _leaks(line)]
    assert problems == []


def test_an_unexpected_error_answers_an_html_500_and_logs_neither_its_text_nor_the_card(
    server: RunningServer, merchant: Merchant, rendered_logs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_pay(session_id: str, card: Any, *, return_url: str) -> Any:
        raise ValueError(f"cannot parse {card.number} / {card.cvc}")  # an exception quoting its input

    monkeypatch.setattr(server.gateway.checkout, "pay", broken_pay)
    session = create_session(merchant)
    with Browser(server) as browser:
        resp = browser.pay(session["id"], card_fields(VISA, cvc=CVCS[0]))
    assert resp.status_code == 500
    assert resp.headers["content-type"].startswith("text/html") and "Something went wrong" in resp.text
    assert "content-security-policy" in resp.headers
    errors = [line for line in rendered_logs if "checkout_page_error" in line]
    assert errors and "ValueError" in errors[0] and "cannot parse" not in errors[0]
    assert [leak for leak in _leaks(_text(resp)) + [x for line in rendered_logs for x in _leaks(line)]] == []
