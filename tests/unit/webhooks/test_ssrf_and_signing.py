"""SSRF rules, signature headers, the retry policy and the inbound classification, without a database."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx2
import pytest
import stripe
from standardwebhooks.webhooks import Webhook as StandardWebhook

from paygate.connectors.base import PaymentStatus
from paygate.events import outbound
from paygate.events.deliveries import DEFAULT_SCHEDULE, RetryPolicy
from paygate.events.signing import new_secret, signature_headers
from paygate.events.ssrf import Allowlist, BlockedDestination, check_address, check_scheme
from paygate.hooks.apply import classify
from tests.integration.webhooks._support import Receiver


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1", "::1", "fd00:ec2::254",
                                "::ffff:127.0.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1"])  # fmt: skip
def test_internal_addresses_are_refused_unless_allow_listed(ip: str) -> None:
    addr = ipaddress.ip_address(ip)
    with pytest.raises(BlockedDestination):
        check_address(addr, Allowlist())
    check_address(addr, Allowlist.parse(f"{ip}, example.org"))


def test_public_addresses_and_allow_listed_networks_pass() -> None:
    check_address(ipaddress.ip_address("93.184.216.34"), Allowlist())
    check_address(ipaddress.ip_address("10.1.2.3"), Allowlist.parse("10.0.0.0/8"))


def test_http_is_only_for_test_mode_or_by_setting() -> None:
    check_scheme("http://example.com/h", livemode=False, allow_http=False)
    check_scheme("http://example.com/h", livemode=True, allow_http=True)
    with pytest.raises(ValueError):
        check_scheme("http://example.com/h", livemode=True, allow_http=False)
    with pytest.raises(ValueError):
        check_scheme("ftp://example.com/h", livemode=False, allow_http=True)


def _post(url: str, allowlist: Allowlist) -> outbound.Outcome:
    async def go() -> outbound.Outcome:
        async with httpx2.AsyncClient() as client:
            return await outbound.post(
                client, url, b"{}", {}, allowlist=allowlist, livemode=False, allow_http=False, timeout=5
            )

    return asyncio.run(go())


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/h", "http://10.0.0.1/h", "http://169.254.169.254/latest/meta-data"]
)
def test_delivery_to_internal_addresses_is_refused_before_connecting(url: str) -> None:
    out = _post(url, Allowlist())
    assert out.blocked and out.status_code is None and out.error and out.error.startswith("blocked:")


def test_delivery_to_loopback_works_when_allow_listed_and_redirects_are_checked() -> None:
    receiver = Receiver().start()
    try:
        assert _post(receiver.url, Allowlist()).blocked
        assert not receiver.requests
        assert _post(receiver.url, Allowlist.parse("127.0.0.1")).status_code == 200
        assert len(receiver.requests) == 1
    finally:
        receiver.stop()
    redirect = Receiver(statuses=[307], extra_headers={"Location": "http://169.254.169.254/latest"}).start()
    try:
        out = _post(redirect.url, Allowlist.parse("127.0.0.1"))
        assert out.blocked and "169.254.169.254" in (out.error or "")
    finally:
        redirect.stop()


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_total_delivery_timeout() -> None:
    import socket
    import threading
    import time as _time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        while not stop.is_set():  # one byte every 0.2 s: no single read ever times out
            try:
                conn.sendall(b"x")
            except OSError:
                break
            _time.sleep(0.2)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()

    async def go() -> outbound.Outcome:
        async with httpx2.AsyncClient() as client:
            return await outbound.post(
                client, f"http://127.0.0.1:{port}/h", b"{}", {}, allowlist=Allowlist.parse("127.0.0.1"),
                livemode=False, allow_http=False, timeout=1.0,
            )  # fmt: skip

    try:
        out = asyncio.run(go())
    finally:
        stop.set()
        listener.close()
    assert out.status_code is None
    assert out.error is not None and out.error.startswith("timeout")
    assert out.latency_ms < 5000


def test_one_secret_signs_for_stripe_and_standard_webhooks_and_rolls_sign_with_both() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"id": "evt_1", "object": "event", "type": "x", "created": 1, "data": {"object": {}}, "livemode": false}'
    import time

    ts = int(time.time())
    headers = signature_headers([new, old], "evt_1", ts, body)
    for secret in (old, new):
        stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], secret)
        StandardWebhook(secret).verify(body, headers)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), headers["Stripe-Signature"], new_secret())


def test_default_retry_schedule_spans_about_three_days_and_honours_retry_after() -> None:
    assert 3 * 86400 < sum(DEFAULT_SCHEDULE) < 4 * 86400  # the 0, 5 s, 5 min … 24 h
    policy = RetryPolicy((5, 300), jitter=lambda d: d)
    assert policy.next_delay(1, 500, None) == 5
    assert policy.next_delay(1, 429, 120) == 120
    assert policy.next_delay(1, 500, 120) == 5  # Retry-After only on 429/503
    assert policy.next_delay(3, 500, None) is None


@pytest.mark.parametrize(
    ("attempt", "pending_op", "said", "verdict"),
    [
        ("unknown", None, PaymentStatus.CAPTURED, "forward"),
        ("captured", None, PaymentStatus.AUTHORIZED, "stale"),
        ("captured", None, PaymentStatus.CAPTURED, "stale"),
        ("captured", None, PaymentStatus.FAILED, "conflict"),
        ("authorized", "capture", PaymentStatus.CAPTURED, "forward"),
        ("authorized", None, PaymentStatus.CAPTURED, "conflict"),
        ("failed", None, PaymentStatus.CAPTURED, "conflict"),
    ],
)
def test_inbound_events_are_classified_against_paygates_state(
    attempt: str, pending_op: str | None, said: PaymentStatus, verdict: str
) -> None:
    assert classify(attempt, pending_op, said) == verdict
