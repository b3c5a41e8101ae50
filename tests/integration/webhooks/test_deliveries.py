"""Merchant webhooks end to end: endpoints API, signed deliveries, retries, attempts, redelivery, disabling."""

from __future__ import annotations

from typing import Any

import orjson
import stripe
from standardwebhooks.webhooks import Webhook as StandardWebhook

from paygate.worker.runner import Job
from tests.conftest import Merchant
from tests.integration.webhooks._support import Receiver, drain
from tests.support.server import RunningServer


def _endpoint(m: Merchant, url: str, events: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"url": url}
    for i, e in enumerate(events or ["*"]):
        data[f"enabled_events[{i}]"] = e
    resp = m.post("/v1/webhook_endpoints", data)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _pay(m: Merchant) -> dict[str, Any]:
    resp = m.post(
        "/v1/payment_intents", {"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _types(r: Receiver) -> list[str]:
    return [orjson.loads(x.body)["type"] for x in r.requests]


def test_endpoint_crud_shows_the_secret_only_at_creation(wh_merchant: Merchant) -> None:
    m = wh_merchant
    created = m.stripe.v1.webhook_endpoints.create(
        params={"url": "https://example.com/hook", "enabled_events": ["payment_intent.succeeded"], "description": "d"}
    )
    assert created.secret.startswith("whsec_") and created.status == "enabled"
    got = m.get(f"/v1/webhook_endpoints/{created.id}").json()
    assert "secret" not in got and got["enabled_events"] == ["payment_intent.succeeded"]
    updated = m.post(
        f"/v1/webhook_endpoints/{created.id}", {"enabled_events[0]": "*", "metadata[k]": "v", "disabled": "true"}
    )
    assert updated.json()["enabled_events"] == ["*"] and updated.json()["status"] == "disabled"
    assert updated.json()["metadata"] == {"k": "v"}
    listed = m.get("/v1/webhook_endpoints").json()
    assert [e["id"] for e in listed["data"]] == [created.id]
    assert m.http.delete(f"/v1/webhook_endpoints/{created.id}").json()["deleted"] is True
    assert m.get(f"/v1/webhook_endpoints/{created.id}").status_code == 404


def test_endpoint_url_must_be_https_in_live_mode(wh_server: RunningServer, wh_merchant: Merchant) -> None:
    import httpx2

    live = httpx2.Client(base_url=wh_server.base_url, auth=(wh_merchant.live_secret_key, ""))
    resp = live.post("/v1/webhook_endpoints", data={"url": "http://example.com/h", "enabled_events[0]": "*"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "url"
    live.close()


def test_deliveries_verify_with_the_stripe_sdk_and_standard_webhooks(
    wh_server: RunningServer, wh_merchant: Merchant, receiver: Receiver, jobs: list[Job]
) -> None:
    ep = _endpoint(wh_merchant, receiver.url, ["payment_intent.succeeded"])
    pi = _pay(wh_merchant)
    drain(wh_server, jobs, lambda: "payment_intent.succeeded" in _types(receiver))
    hit = receiver.requests[0]
    event = stripe.Webhook.construct_event(hit.body.decode(), hit.headers["stripe-signature"], ep["secret"])
    assert event["type"] == "payment_intent.succeeded" and event["data"]["object"]["id"] == pi["id"]
    payload = StandardWebhook(ep["secret"]).verify(hit.body, hit.headers)
    assert payload["id"] == hit.headers["webhook-id"] == event["id"]
    assert set(payload) >= {"id", "object", "type", "created", "data", "livemode"} and payload["object"] == "event"
    assert _types(receiver) == ["payment_intent.succeeded"]  # only subscribed events


def test_endpoint_down_then_back_gets_the_same_event_and_attempts_are_recorded(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    receiver = Receiver(statuses=[500, 503, 200], extra_headers={"Retry-After": "0"}).start()
    try:
        _endpoint(wh_merchant, receiver.url, ["payment_intent.succeeded"])
        _pay(wh_merchant)
        drain(wh_server, jobs, lambda: len(receiver.requests) >= 3)
        ids = {r.headers["webhook-id"] for r in receiver.requests}
        assert len(ids) == 1 and len(receiver.requests) == 3
        event_id = ids.pop()
        deliveries = wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"]
        drain(
            wh_server,
            jobs,
            lambda: wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"][0]["status"] == "succeeded",
        )
        deliveries = wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"]
        assert len(deliveries) == 1
        attempts = deliveries[0]["attempts"]
        assert [a["status_code"] for a in attempts] == [500, 503, 200]
        assert all(a["latency_ms"] >= 0 for a in attempts) and attempts[0]["error"] == "HTTP 500"
    finally:
        receiver.stop()


def test_redeliver_sends_the_event_again_with_the_same_id(
    wh_server: RunningServer, wh_merchant: Merchant, receiver: Receiver, jobs: list[Job]
) -> None:
    _endpoint(wh_merchant, receiver.url, ["payment_intent.succeeded"])
    _pay(wh_merchant)
    drain(wh_server, jobs, lambda: len(receiver.requests) == 1)
    event_id = receiver.requests[0].headers["webhook-id"]
    resp = wh_merchant.post(f"/v1/events/{event_id}/redeliver")
    assert resp.status_code == 200, resp.text
    drain(wh_server, jobs, lambda: len(receiver.requests) == 2)
    assert receiver.requests[1].headers["webhook-id"] == event_id


def test_gone_endpoint_is_disabled_and_the_merchant_is_told(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    receiver = Receiver(statuses=[410]).start()
    try:
        ep = _endpoint(wh_merchant, receiver.url, ["payment_intent.succeeded"])
        _pay(wh_merchant)
        drain(
            wh_server, jobs, lambda: wh_merchant.get(f"/v1/webhook_endpoints/{ep['id']}").json()["status"] == "disabled"
        )
        told = wh_merchant.get("/v1/events", params={"type": "webhook_endpoint.disabled"}).json()["data"]
        assert [e["data"]["object"]["id"] for e in told] == [ep["id"]]
        assert told[0]["data"]["object"]["disabled_reason"] == "gone"
        assert len(receiver.requests) == 1  # not retried
    finally:
        receiver.stop()


def test_rolled_secret_signs_alongside_the_old_one_during_the_overlap(
    wh_server: RunningServer, wh_merchant: Merchant, receiver: Receiver, jobs: list[Job]
) -> None:
    ep = _endpoint(wh_merchant, receiver.url, ["payment_intent.succeeded"])
    rolled = wh_merchant.post(f"/v1/webhook_endpoints/{ep['id']}/roll_secret", {"expires_in": 3600}).json()
    assert rolled["secret"] != ep["secret"]
    _pay(wh_merchant)
    drain(wh_server, jobs, lambda: len(receiver.requests) == 1)
    hit = receiver.requests[0]
    for secret in (ep["secret"], rolled["secret"]):
        stripe.Webhook.construct_event(hit.body.decode(), hit.headers["stripe-signature"], secret)
        StandardWebhook(secret).verify(hit.body, hit.headers)


def test_delivery_to_a_private_address_is_refused_and_recorded(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    _endpoint(wh_merchant, "http://10.0.0.1/hook", ["payment_intent.succeeded"])
    pi = _pay(wh_merchant)
    events = wh_merchant.get("/v1/events", params={"type": "payment_intent.succeeded"}).json()["data"]
    event_id = next(e["id"] for e in events if e["data"]["object"]["id"] == pi["id"])

    def attempted() -> bool:
        data = wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"]
        return bool(data and data[0]["attempts"])

    drain(wh_server, jobs, attempted)
    attempt = wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"][0]["attempts"][0]
    assert attempt["status_code"] is None and attempt["error"].startswith("blocked: 10.0.0.1 is a private address")


def test_pending_webhooks_counts_undelivered_endpoints_and_delivery_success_filters_by_it(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    ok, down = Receiver().start(), Receiver(statuses=[500] * 50).start()
    try:
        _endpoint(wh_merchant, ok.url, ["payment_intent.succeeded"])
        _endpoint(wh_merchant, down.url, ["payment_intent.*"])
        _pay(wh_merchant)

        def events() -> dict[str, dict[str, Any]]:
            listed = wh_merchant.get("/v1/events", params={"limit": 10}).json()["data"]
            return {e["type"]: e for e in listed}

        queued = events()  # before the relay: every subscribed endpoint is still to be served
        assert queued["payment_intent.succeeded"]["pending_webhooks"] == 2
        assert queued["charge.succeeded"]["pending_webhooks"] == 0  # nobody subscribed to charges

        drain(wh_server, jobs, lambda: len(ok.requests) >= 1 and len(down.requests) >= 2)
        served = events()
        succeeded = served["payment_intent.succeeded"]
        assert succeeded["pending_webhooks"] == 1  # the endpoint answering 500 is still owed it
        assert wh_merchant.get(f"/v1/events/{succeeded['id']}").json()["pending_webhooks"] == 1

        def listed(success: str) -> set[str]:
            page = wh_merchant.get("/v1/events", params={"delivery_success": success, "limit": 100}).json()
            return {e["id"] for e in page["data"]}

        owed = {e["id"] for e in served.values() if e["pending_webhooks"]}
        assert succeeded["id"] in owed and served["charge.succeeded"]["id"] not in owed
        assert owed <= listed("false") and not owed & listed("true")
        assert served["charge.succeeded"]["id"] in listed("true")
        bad = wh_merchant.get("/v1/events", params={"delivery_success": "maybe"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "delivery_success"
    finally:
        ok.stop()
        down.stop()
