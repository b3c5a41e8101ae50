"""Small helpers for the HTTP API tests: Stripe error envelope checks and intents in a given state."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.conftest import Merchant


def stripe_error(
    resp: httpx2.Response, status: int, code: str | None = None, *, param: str | None = None
) -> dict[str, Any]:
    """Assert ``resp`` is a Stripe error envelope with ``status`` (and ``code``/``param`` if given); return it."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    assert isinstance(err.get("type"), str) and err["type"], err
    assert isinstance(err.get("message"), str) and err["message"], err
    if code is not None:
        assert err.get("code") == code, err
    if param is not None:
        assert err.get("param") == param, err
    return err


def ok(resp: httpx2.Response) -> dict[str, Any]:
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text[:500]}"
    body: dict[str, Any] = resp.json()
    return body


def create_intent(m: Merchant, **params: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"amount": 2000, "currency": "usd", **params}
    return ok(m.post("/v1/payment_intents", data))


def succeeded_intent(m: Merchant, amount: int = 2000) -> dict[str, Any]:
    pi = create_intent(m, amount=amount, payment_method="pm_card_visa", confirm="true")
    assert pi["status"] == "succeeded", pi
    return pi


def uncaptured_intent(m: Merchant, amount: int = 2000) -> dict[str, Any]:
    pi = create_intent(m, amount=amount, payment_method="pm_card_visa", confirm="true", capture_method="manual")
    assert pi["status"] == "requires_capture", pi
    return pi


def canceled_intent(m: Merchant) -> dict[str, Any]:
    pi = create_intent(m)
    canceled = ok(m.post(f"/v1/payment_intents/{pi['id']}/cancel"))
    assert canceled["status"] == "canceled", canceled
    return canceled


def status_of(m: Merchant, intent_id: str) -> str:
    return str(ok(m.get(f"/v1/payment_intents/{intent_id}"))["status"])
