"""Helpers for vault and customer tests: isolated key files, raw-card access, publishable-key clients, cards."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import httpx2
from sqlalchemy import update

from paygate.db.tables import merchants
from tests.conftest import Merchant
from tests.support.server import RunningServer

FUTURE_YEAR = "2034"


def isolate_vault_keys() -> None:
    """Point the vault's key file (and generated fingerprint secret) at a private temp dir for this test
    session, unless the caller configured one. Runs at conftest import, before any server is built."""
    if "PAYGATE_VAULT_KEY_FILE" not in os.environ:
        root = tempfile.mkdtemp(prefix="paygate-vault-")
        os.environ["PAYGATE_VAULT_KEY_FILE"] = os.path.join(root, "vault-keys.json")


def enable_raw_card_access(server: RunningServer, merchant_id: str, enabled: bool = True) -> None:
    async def go() -> None:
        async with server.gateway.db.write() as conn:
            await conn.execute(update(merchants).where(merchants.c.id == merchant_id).values(raw_card_access=enabled))

    server.call(go())


def publishable(merchant: Merchant) -> httpx2.Client:
    return httpx2.Client(base_url=merchant.server.base_url, auth=(merchant.publishable_key, ""), timeout=30)


def card_form(
    number: str, cvc: str | None = "123", *, exp_month: str = "12", exp_year: str = FUTURE_YEAR, prefix: str = ""
) -> dict[str, Any]:
    def key(name: str) -> str:
        return f"{prefix}[card][{name}]" if prefix else f"card[{name}]"

    form: dict[str, Any] = {
        f"{prefix}[type]" if prefix else "type": "card",
        key("number"): number,
        key("exp_month"): exp_month,
        key("exp_year"): exp_year,
    }
    if cvc is not None:
        form[key("cvc")] = cvc
    return form


def tokenize(client: httpx2.Client, number: str, cvc: str | None = "123", **extra: Any) -> dict[str, Any]:
    resp = client.post("/v1/payment_methods", data={**card_form(number, cvc), **extra})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body
