"""Simulator-specific behaviour: admin config, fault injection, webhook retries / duplicates / drops, disputes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import orjson
import pytest
from _sim_support import WEBHOOK_SECRET, Receiver, sim_get, sim_post

from paygate.connectors.base import InboundWebhook
from paygate.connectors.simulator import webhooks as native_webhooks
from paygate.kit.secret import Secret

HEADERS = {"authorization": "Bearer sk_test_sim"}


@pytest.fixture
def configured(sim_url: str) -> Iterator[Any]:
    """Apply a config change for one test; restore the starting config afterwards."""

    def apply(**changes: Any) -> dict[str, Any]:
        response = httpx2.post(f"{sim_url}/_sim/config", json=changes, timeout=5)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    yield apply
    httpx2.post(
        f"{sim_url}/_sim/config",
        json={
            "error_rate": 0.0,
            "webhook_duplicate_rate": 0.0,
            "webhook_drop_rate": 0.0,
            "webhook_urls": {},
        },
        timeout=5,
    )


def pay(sim_url: str, key: str, **extra: Any) -> httpx2.Response:
    body = {"amount": 1000, "currency": "eur", "capture": False, "payment_method": "pm_card_visa", **extra}
    return httpx2.post(
        f"{sim_url}/native/v1/payments", json=body, headers={**HEADERS, "idempotency-key": key}, timeout=5
    )


def test_config_rejects_unknown_settings_and_bad_rates(sim_url: str) -> None:
    assert httpx2.post(f"{sim_url}/_sim/config", json={"nope": 1}, timeout=5).status_code == 400
    assert httpx2.post(f"{sim_url}/_sim/config", json={"error_rate": 2}, timeout=5).status_code == 400
    shown = sim_get(sim_url, "/_sim/config")
    assert shown["webhook_secret"] == "********"


def test_error_rate_one_answers_500_and_records_nothing(sim_url: str, configured: Any) -> None:
    configured(error_rate=1.0)
    key = f"k_{uuid.uuid4().hex}"
    response = pay(sim_url, key)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "not_processed"
    assert sim_get(sim_url, "/_sim/operations", idempotency_key=key)["count"] == 0


def test_missing_api_key_is_rejected(sim_url: str) -> None:
    response = httpx2.post(f"{sim_url}/native/v1/payments", json={}, timeout=5)
    assert response.status_code == 401


def test_reusing_a_key_with_another_body_is_a_conflict(sim_url: str) -> None:
    key = f"k_{uuid.uuid4().hex}"
    assert pay(sim_url, key).status_code == 200
    assert pay(sim_url, key, amount=2000).status_code == 409


def test_webhook_is_retried_until_the_receiver_answers_2xx(sim_url: str, receiver: Receiver, configured: Any) -> None:
    path = f"/flaky/{uuid.uuid4().hex}"
    receiver.failures[path] = 2
    configured(webhook_urls={"native": receiver.url + path})
    payment = pay(sim_url, f"k_{uuid.uuid4().hex}").json()
    hooks = receiver.wait_for(lambda h: h.path == path and payment["id"].encode() in h.body)
    assert hooks
    delivered = receiver.wait_for(lambda h: h.path == path and len([x for x in receiver.hooks if x.path == path]) >= 3)
    assert delivered
    attempts = [a for a in sim_get(sim_url, "/_sim/webhooks")["data"] if a["url"].endswith(path)]
    assert [a["outcome"] for a in attempts][:3] == ["failed", "failed", "delivered"]
    hook = delivered[-1]
    assert native_webhooks.verify(InboundWebhook(hook.body, hook.headers, hook.at), Secret(WEBHOOK_SECRET))


def test_duplicated_webhooks_carry_the_same_event_id(sim_url: str, receiver: Receiver, configured: Any) -> None:
    path = f"/dup/{uuid.uuid4().hex}"
    configured(webhook_urls={"native": receiver.url + path}, webhook_duplicate_rate=1.0)
    pay(sim_url, f"k_{uuid.uuid4().hex}")
    hooks = receiver.wait_for(lambda h: h.path == path and len([x for x in receiver.hooks if x.path == path]) >= 2)
    ids = [orjson.loads(h.body)["id"] for h in receiver.hooks if h.path == path]
    assert len(hooks) >= 2
    assert len(ids) == 2 and ids[0] == ids[1]


def test_dropped_webhooks_are_recorded_and_never_sent(sim_url: str, receiver: Receiver, configured: Any) -> None:
    path = f"/drop/{uuid.uuid4().hex}"
    configured(webhook_urls={"native": receiver.url + path}, webhook_drop_rate=1.0)
    pay(sim_url, f"k_{uuid.uuid4().hex}")
    attempts = [a for a in sim_get(sim_url, "/_sim/webhooks")["data"] if a["url"].endswith(path)]
    assert [a["outcome"] for a in attempts] == ["dropped"]
    assert not [h for h in receiver.hooks if h.path == path]


def test_opening_a_dispute_sends_a_dispute_webhook(sim_url: str, receiver: Receiver) -> None:
    payment = pay(sim_url, f"k_{uuid.uuid4().hex}", capture=True).json()
    opened = sim_post(sim_url, "/_sim/disputes", {"txn_id": payment["id"], "reason": "fraudulent"})
    assert opened["status"] == "needs_response"
    hooks = receiver.wait_for(lambda h: opened["id"].encode() in h.body)
    assert hooks
    event = native_webhooks.parse(InboundWebhook(hooks[0].body, hooks[0].headers, hooks[0].at))
    assert (event.kind, event.processor_reference) == ("dispute", payment["id"])
    assert sim_get(sim_url, "/_sim/operations", type="dispute", txn_id=payment["id"])["count"] == 1
