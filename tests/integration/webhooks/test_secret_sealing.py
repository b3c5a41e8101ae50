"""Webhook signing secrets are sealed at rest, still sign deliveries, survive KEK rotation, and fail closed when a
sealed value is moved to another endpoint."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from sqlalchemy import select, update

from paygate.events.secrets import SEALED_PREFIX, reseal_all
from paygate.events.tables import webhook_endpoints as we
from paygate.events.webhook_endpoints import signing_secrets
from paygate.vault.errors import VaultIntegrityError
from paygate.worker.runner import Job
from tests.conftest import Merchant
from tests.integration.webhooks._support import Receiver, drain
from tests.support.server import RunningServer


def _create(m: Merchant, url: str) -> dict[str, Any]:
    resp = m.post("/v1/webhook_endpoints", {"url": url, "enabled_events[0]": "payment_intent.succeeded"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _row(server: RunningServer, endpoint_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with server.gateway.db.read() as conn:
            return dict((await conn.execute(select(we).where(we.c.id == endpoint_id))).mappings().one())

    return server.call(go())


def _set(server: RunningServer, endpoint_id: str, **values: Any) -> None:
    async def go() -> None:
        async with server.gateway.db.write() as conn:
            await conn.execute(update(we).where(we.c.id == endpoint_id).values(**values))

    server.call(go())


def test_created_and_rolled_secrets_are_stored_sealed_never_in_plaintext(
    wh_server: RunningServer, wh_merchant: Merchant
) -> None:
    ep = _create(wh_merchant, "https://example.com/hook")
    row = _row(wh_server, ep["id"])
    assert row["secret"].startswith(SEALED_PREFIX) and ep["secret"] not in row["secret"]
    rolled = wh_merchant.post(f"/v1/webhook_endpoints/{ep['id']}/roll_secret", {"expires_in": 60}).json()
    row = _row(wh_server, ep["id"])
    for column in ("secret", "previous_secret"):
        assert row[column].startswith(SEALED_PREFIX)
        assert ep["secret"] not in row[column] and rolled["secret"] not in row[column]
    provider = wh_server.gateway.vault.provider
    assert signing_secrets(row, row["updated"], provider) == [rolled["secret"], ep["secret"]]


def test_a_sealed_secret_moved_to_another_endpoint_does_not_open_and_reseal_refuses_broken_ones(
    wh_server: RunningServer, wh_merchant: Merchant
) -> None:
    a = _create(wh_merchant, "https://example.com/a")
    b = _create(wh_merchant, "https://example.com/b")
    own = _row(wh_server, b["id"])["secret"]
    _set(wh_server, b["id"], secret=_row(wh_server, a["id"])["secret"])
    try:
        with pytest.raises(VaultIntegrityError):
            signing_secrets(_row(wh_server, b["id"]), 0, wh_server.gateway.vault.provider)
        garbage = SEALED_PREFIX + "bm90IGEgc2VhbGVkIHJlY29yZA=="
        _set(wh_server, b["id"], secret=garbage)
        report = wh_server.call(reseal_all(wh_server.gateway.db, wh_server.gateway.vault.provider))
        assert report.refused >= 1  # left untouched for investigation; the run goes on
        assert _row(wh_server, b["id"])["secret"] == garbage
    finally:
        _set(wh_server, b["id"], secret=own)


def test_a_secret_stored_before_sealing_still_signs_and_reseal_seals_it(
    wh_server: RunningServer, wh_merchant: Merchant, receiver: Receiver, jobs: list[Job]
) -> None:
    ep = _create(wh_merchant, receiver.url)
    legacy = "whsec_legacyplaintextsecretvalue0000000000"
    _set(wh_server, ep["id"], secret=legacy)
    resp = wh_merchant.post(
        "/v1/payment_intents", {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
    )
    assert resp.status_code == 200, resp.text
    drain(wh_server, jobs, lambda: len(receiver.requests) >= 1)
    hit = receiver.requests[0]
    stripe.Webhook.construct_event(hit.body.decode(), hit.headers["stripe-signature"], legacy)

    provider = wh_server.gateway.vault.provider
    assert wh_server.call(reseal_all(wh_server.gateway.db, provider)).changed >= 1
    row = _row(wh_server, ep["id"])
    assert row["secret"].startswith(SEALED_PREFIX) and legacy not in row["secret"]
    assert signing_secrets(row, 0, provider) == [legacy]
    assert wh_server.call(reseal_all(wh_server.gateway.db, provider)).changed == 0  # nothing left to do
