"""The hosted page's browser security over real HTTP: CSP, SRI, framing, response headers and CSRF."""

from __future__ import annotations

import base64
import hashlib

import pytest

from paygate.checkout.security import csrf_cookie_header
from tests.checkout._page_support import (
    DECLINE,
    VISA,
    Browser,
    Tags,
    authorizations,
    card_fields,
    create_session,
    csp_directives,
    intent_status,
    reset_limits,
    session_row,
)
from tests.conftest import Merchant
from tests.support.server import RunningServer


@pytest.fixture(autouse=True)
def _fresh_limits(server: RunningServer) -> None:
    reset_limits(server)


def _assert_page_headers(headers: object, *, framed_by: list[str] | None = None) -> dict[str, list[str]]:
    h = headers  # httpx headers: case-insensitive
    csp = h["content-security-policy"]  # type: ignore[index]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    d = csp_directives(csp)
    assert d["default-src"] == ["'none'"]
    assert d["script-src"] == ["'self'"]
    assert d["style-src"] == ["'self'"]
    assert d["img-src"] == ["'self'", "data:"]
    assert d["base-uri"] == ["'none'"]
    assert d["form-action"][0] == "'self'"
    assert d["frame-ancestors"] == (framed_by or ["'none'"])
    assert h["referrer-policy"] == "no-referrer"  # type: ignore[index]
    assert h["cache-control"] == "no-store"  # type: ignore[index]
    assert h["x-content-type-options"] == "nosniff"  # type: ignore[index]
    return d


def test_payment_page_sends_strict_csp_and_privacy_headers(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp, _ = browser.open(session["id"])
    assert resp.headers["content-type"].startswith("text/html")
    d = _assert_page_headers(resp.headers)
    assert "https://shop.example" in d["form-action"]  # the 303 to success_url after the POST
    assert server.base_url in d["form-action"]  # the sandbox's 3-D Secure challenge
    assert resp.headers["x-frame-options"] == "DENY"


def test_every_script_and_stylesheet_is_sri_pinned_and_matches_the_served_bytes(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        resp, _ = browser.open(session["id"])
        tags = Tags(resp.text)
        assert tags.inline == []  # no inline <script> or <style> at all
        assert all("style" not in attrs for _, attrs in tags.tags)  # no style="" attributes
        assert all(not name.startswith("on") for _, attrs in tags.tags for name in attrs)  # no onclick=…
        scripts = tags.find("script")
        sheets = [a for a in tags.find("link") if a.get("rel") == "stylesheet"]
        assert scripts and sheets
        for attrs in scripts + sheets:
            url = attrs.get("src") or attrs.get("href")
            integrity = attrs.get("integrity")
            assert url and url.startswith("/c/static/") and integrity and integrity.startswith("sha384-")
            asset = browser.get(url)
            assert asset.status_code == 200
            expected = "sha384-" + base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
            assert integrity == expected
            assert "immutable" in asset.headers["cache-control"]
            assert asset.headers["x-content-type-options"] == "nosniff"
            kind = "javascript" if url.endswith(".js") else "css"
            assert kind in asset.headers["content-type"]
        stale = browser.get(scripts[0]["src"].replace("/c/static/", "/c/static/0000000000000000x/"))  # type: ignore[union-attr]
        assert stale.status_code == 404


def test_status_pages_carry_the_same_headers(server: RunningServer, merchant: Merchant) -> None:
    with Browser(server) as browser:
        missing = browser.get("/c/pay/cs_test_" + "x" * 32)
        assert missing.status_code == 404
        _assert_page_headers(missing.headers)
        session = create_session(merchant)
        paid = browser.pay(session["id"], card_fields(VISA))
        assert paid.status_code == 303
        _assert_page_headers(paid.headers)  # the redirect too: no-referrer keeps the page URL from the merchant
        again = browser.get(f"/c/pay/{session['id']}")
        assert again.status_code == 200
        _assert_page_headers(again.headers)


def test_frame_ancestors_is_none_by_default_and_lists_the_merchants_allowed_origins(
    server: RunningServer, merchant: Merchant, other_merchant: Merchant
) -> None:
    resp = merchant.post(
        "/v1/checkout/settings",
        {
            "allowed_frame_ancestors[0]": "https://shop.example",
            "allowed_frame_ancestors[1]": "https://www.shop.example",
        },
    )
    assert resp.status_code == 200, resp.text
    framed = create_session(merchant)
    unframed = create_session(other_merchant)
    with Browser(server) as browser:
        page, _ = browser.open(framed["id"])
        _assert_page_headers(page.headers, framed_by=["https://shop.example", "https://www.shop.example"])
        assert "x-frame-options" not in page.headers  # X-Frame-Options cannot express a list; CSP governs
        other, _ = browser.open(unframed["id"])
        _assert_page_headers(other.headers)
        assert other.headers["x-frame-options"] == "DENY"
    cleared = merchant.post("/v1/checkout/settings", {"allowed_frame_ancestors": ""})
    assert cleared.status_code == 200, cleared.text
    with Browser(server) as browser:
        after, _ = browser.open(create_session(merchant)["id"])
        _assert_page_headers(after.headers)


def test_csrf_cookie_is_httponly_samesite_strict(server: RunningServer, merchant: Merchant) -> None:
    with Browser(server) as browser:
        resp, _ = browser.open(create_session(merchant)["id"])
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # the test server's base URL is http://
    secure = csrf_cookie_header("b" * 43, secure=True, embeddable=False)
    assert secure.startswith("__Host-") and "; Secure" in secure and "SameSite=Strict" in secure
    embedded = csrf_cookie_header("b" * 43, secure=True, embeddable=True)
    assert "SameSite=None" in embedded and "Partitioned" in embedded and "; Secure" in embedded


def _assert_nothing_charged(server: RunningServer, session: dict[str, object]) -> None:
    intent = str(session["payment_intent"])
    assert authorizations(server, intent) == 0
    assert intent_status(server, intent) == "requires_payment_method"
    row = session_row(server, str(session["id"]))
    assert row["status"] == "open" and row["payment_status"] == "unpaid"


def test_form_post_without_or_with_a_wrong_csrf_token_is_rejected_and_charges_nothing(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant)
    sid = session["id"]
    other = create_session(merchant)
    with Browser(server) as browser, Browser(server) as attacker:
        _, token = browser.open(sid)
        _, other_token = browser.open(other["id"])
        _, attacker_token = attacker.open(sid)
        attempts = {
            "no token": browser.post(f"/c/pay/{sid}", card_fields(VISA)),
            "empty token": browser.post(f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": ""}),
            "forged token": browser.post(f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": token[:-4] + "AAAA"}),
            "token of another session": browser.post(f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": other_token}),
            # another browser's token: the cookie this browser holds does not match it
            "token of another browser": browser.post(
                f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": attacker_token}
            ),
            "cross-site request": browser.post(
                f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
            ),
        }
        # a request with no cookie at all (a forged form on another site, cookie withheld by SameSite)
        with Browser(server) as cookieless:
            attempts["no cookie"] = cookieless.post(f"/c/pay/{sid}", {**card_fields(VISA), "csrf_token": token})
        for label, resp in attempts.items():
            assert resp.status_code == 403, label
            assert "Please enter your card details again" in resp.text, label
            assert "You have not been charged" in resp.text, label
        _assert_nothing_charged(server, session)
        # The rejected page carries a fresh, valid token: the customer can simply submit again.
        retry = browser.pay(sid, card_fields(VISA))
        assert retry.status_code == 303
    assert authorizations(server, session["payment_intent"]) == 1


def test_a_valid_token_is_bound_to_its_session_and_browser(server: RunningServer, merchant: Merchant) -> None:
    session = create_session(merchant)
    with Browser(server) as browser:
        _, token = browser.open(session["id"])
        declined = browser.post(f"/c/pay/{session['id']}", {**card_fields(DECLINE), "csrf_token": token})
        assert declined.status_code == 422  # accepted by CSRF, declined by the issuer
        again = browser.post(f"/c/pay/{session['id']}", {**card_fields(VISA), "csrf_token": token})
        assert again.status_code == 303  # the same token stays valid for this browser and session
