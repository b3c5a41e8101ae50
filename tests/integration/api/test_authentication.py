"""API keys: no key is 401, a bad key is 401 without echoing it, HTTP basic with the key as user name and Bearer
both work, and a publishable key is refused (403) on every secret-key endpoint."""

from __future__ import annotations

import base64

import httpx2
import pytest

from tests.conftest import Merchant
from tests.integration.api._support import ok, stripe_error

pytestmark = pytest.mark.db

# Every secret-key endpoint (README "API" table); ids need not exist: authentication comes first.
SECRET_ENDPOINTS = [
    ("POST", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents/pi_x"),
    ("POST", "/v1/payment_intents/pi_x"),
    ("POST", "/v1/payment_intents/pi_x/confirm"),
    ("POST", "/v1/payment_intents/pi_x/capture"),
    ("POST", "/v1/payment_intents/pi_x/cancel"),
    ("POST", "/v1/refunds"),
    ("GET", "/v1/refunds"),
    ("GET", "/v1/refunds/re_x"),
    ("POST", "/v1/refunds/re_x"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/evt_x"),
]


def _raw(merchant: Merchant) -> httpx2.Client:
    return httpx2.Client(base_url=merchant.server.base_url, timeout=30)


@pytest.mark.parametrize(("method", "path"), SECRET_ENDPOINTS)
def test_no_authorization_header_is_401(merchant: Merchant, method: str, path: str) -> None:
    with _raw(merchant) as client:
        err = stripe_error(client.request(method, path), 401)
    assert err["type"] == "invalid_request_error"
    assert "API key" in err["message"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Token sk_test_abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b":").decode()],
)
def test_malformed_authorization_is_401(merchant: Merchant, header: str) -> None:
    with _raw(merchant) as client:
        stripe_error(client.get("/v1/payment_intents", headers={"Authorization": header}), 401)


def test_unknown_key_is_401_and_the_key_is_not_echoed(merchant: Merchant) -> None:
    bogus = "sk_test_" + "Z" * 40
    with _raw(merchant) as client:
        err = stripe_error(
            client.get("/v1/payment_intents", headers={"Authorization": f"Bearer {bogus}"}), 401, "api_key_invalid"
        )
    assert bogus not in err["message"]


def test_bearer_secret_key_works(merchant: Merchant) -> None:
    with _raw(merchant) as client:
        resp = client.get("/v1/payment_intents", headers={"Authorization": f"Bearer {merchant.secret_key}"})
    assert ok(resp)["object"] == "list"


@pytest.mark.parametrize("password", ["", "ignored"])
def test_basic_auth_with_the_key_as_user_name_works(merchant: Merchant, password: str) -> None:
    with httpx2.Client(base_url=merchant.server.base_url, auth=(merchant.secret_key, password), timeout=30) as c:
        pi = ok(c.post("/v1/payment_intents", data={"amount": "2000", "currency": "usd"}))
        assert ok(c.get(f"/v1/payment_intents/{pi['id']}"))["id"] == pi["id"]


def test_basic_auth_without_a_colon_works(merchant: Merchant) -> None:
    token = base64.b64encode(merchant.secret_key.encode()).decode()
    with _raw(merchant) as client:
        assert ok(client.get("/v1/payment_intents", headers={"Authorization": f"Basic {token}"}))["object"] == "list"


@pytest.mark.parametrize(("method", "path"), SECRET_ENDPOINTS)
def test_publishable_key_is_403_on_every_secret_endpoint(merchant: Merchant, method: str, path: str) -> None:
    with _raw(merchant) as client:
        resp = client.request(method, path, headers={"Authorization": f"Bearer {merchant.publishable_key}"})
    err = stripe_error(resp, 403, "secret_key_required")
    assert err["type"] == "invalid_request_error"
    assert "publishable" in err["message"]


def test_publishable_key_creates_nothing(merchant: Merchant) -> None:
    with _raw(merchant) as client:
        resp = client.post(
            "/v1/payment_intents",
            data={"amount": "2000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
            headers={"Authorization": f"Bearer {merchant.publishable_key}"},
        )
    stripe_error(resp, 403)
    assert ok(merchant.get("/v1/payment_intents"))["data"] == []


def test_another_merchant_s_publishable_key_does_not_unlock_anything(
    merchant: Merchant, other_merchant: Merchant
) -> None:
    with _raw(merchant) as client:
        resp = client.get("/v1/payment_intents", headers={"Authorization": f"Bearer {other_merchant.publishable_key}"})
    stripe_error(resp, 403)
