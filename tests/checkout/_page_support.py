"""Helpers for the hosted-page tests: sessions created through the API, a "browser" (an httpx client with its
own cookie jar) that opens the page and posts the form the way the HTML form does, and database probes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx2
from sqlalchemy import select

from paygate.checkout.page import page_runtime
from paygate.db.tables import payment_intents
from tests.checkout._sessions_support import DECLINE as DECLINE
from tests.checkout._sessions_support import INSUFFICIENT as INSUFFICIENT
from tests.checkout._sessions_support import SLOW as SLOW
from tests.checkout._sessions_support import THREE_DS as THREE_DS
from tests.checkout._sessions_support import TIMEOUT as TIMEOUT
from tests.checkout._sessions_support import VISA as VISA
from tests.checkout._sessions_support import authorizations as authorizations
from tests.checkout._sessions_support import post_session
from tests.checkout._sessions_support import session_row as session_row
from tests.conftest import Merchant
from tests.support.server import RunningServer

MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
SUCCESS_URL = "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}"
CANCEL_URL = "https://shop.example/cart"


def session_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "mode": "payment",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1850",
        "line_items[0][price_data][product_data][name]": "Coffee beans, 250 g",
        "line_items[0][quantity]": "2",
        "line_items[1][price_data][currency]": "eur",
        "line_items[1][price_data][unit_amount]": "490",
        "line_items[1][price_data][product_data][name]": "Shipping",
        "line_items[1][quantity]": "1",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def create_session(merchant: Merchant, **overrides: Any) -> dict[str, Any]:
    return post_session(merchant, session_form(**overrides))


def reset_limits(server: RunningServer) -> None:
    server.call(page_runtime(server.app).limiter.reset())


def card_fields(number: str = VISA, *, exp: str = "12 / 34", cvc: str = "739", **extra: str) -> dict[str, str]:
    fields = {"number": number, "exp": exp, "cvc": cvc, "name": "Jane Doe", "country": "DE", "postal_code": "10115"}
    fields.update(extra)
    return fields


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One customer's browser: its own cookie jar, never follows redirects (tests assert them)."""

    def __init__(self, server: RunningServer, **headers: str) -> None:
        self.server = server
        self.http = httpx2.Client(base_url=server.base_url, follow_redirects=False, timeout=30, headers=headers)
        self.bodies: list[str] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **kw: Any) -> httpx2.Response:
        resp = self.http.get(path, **kw)
        self.bodies.append(resp.text)
        return resp

    def open(self, session_id: str) -> tuple[httpx2.Response, str]:
        """GET the page; returns the response and the form's CSRF token."""
        resp = self.get(f"/c/pay/{session_id}")
        assert resp.status_code == 200, resp.text[:500]
        return resp, token_of(resp.text)

    def post(self, path: str, data: dict[str, str], **kw: Any) -> httpx2.Response:
        resp = self.http.post(path, data=data, **kw)
        self.bodies.append(resp.text)
        return resp

    def pay(self, session_id: str, fields: dict[str, str], *, token: str | None = None) -> httpx2.Response:
        """Open the page (unless a token is given) and submit the form with ``fields``."""
        if token is None:
            _, token = self.open(session_id)
        return self.post(f"/c/pay/{session_id}", {**fields, "csrf_token": token})


def token_of(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Tags(HTMLParser):
    """Collects start tags with their attributes, and the text of <script> / <style> elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[tuple[str, str]] = []
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append((self._open, data))

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def by_id(self, element_id: str) -> dict[str, str | None]:
        for _, attrs in self.tags:
            if attrs.get("id") == element_id:
                return attrs
        raise AssertionError(f"no element #{element_id}")


def csp_directives(header: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def intent_status(server: RunningServer, intent_id: str) -> str:
    async def go() -> str:
        async with server.gateway.db.read() as conn:
            stmt = select(payment_intents.c.status).where(payment_intents.c.id == intent_id)
            return str((await conn.execute(stmt)).scalar_one())

    return server.call(go())
