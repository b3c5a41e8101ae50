"""Rate limits on hosted-page submits: per session and per client IP (moving windows), answered with a 429 page
and ``Retry-After``; with Redis storage the windows are shared by every API process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from paygate.checkout.ratelimit import storage_uri
from tests.checkout._page_support import VISA, Browser, authorizations, card_fields, create_session, reset_limits
from tests.conftest import Merchant
from tests.support.server import RunningServer, free_port

BAD_NUMBER = "4242424242424241"  # fails Luhn: rejected by validation, so these submits never charge


@pytest.fixture(autouse=True)
def _fresh_limits(server: RunningServer) -> None:
    reset_limits(server)


def _assert_rate_limited(resp: object) -> int:
    assert resp.status_code == 429  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]
    assert "Too many attempts" in resp.text  # type: ignore[attr-defined]
    retry_after = int(resp.headers["retry-after"])  # type: ignore[attr-defined]
    assert 1 <= retry_after <= 60
    return retry_after


def test_submits_beyond_the_per_session_limit_get_429_with_retry_after(
    server: RunningServer, merchant: Merchant
) -> None:
    session = create_session(merchant)
    limit = int(server.gateway.settings.checkout_submit_limit_per_session.split("/")[0])
    with Browser(server) as browser:
        _, token = browser.open(session["id"])
        for _ in range(limit):
            resp = browser.post(f"/c/pay/{session['id']}", {**card_fields(BAD_NUMBER), "csrf_token": token})
            assert resp.status_code == 422
        blocked = browser.post(f"/c/pay/{session['id']}", {**card_fields(VISA), "csrf_token": token})
        _assert_rate_limited(blocked)
        assert authorizations(server, session["payment_intent"]) == 0  # even a good card waits
        other = create_session(merchant)  # the limit is per session: another checkout from this IP still works
        assert browser.pay(other["id"], card_fields(VISA)).status_code == 303


@pytest.fixture
def tight_server(database_url: str, backend: str) -> Iterator[RunningServer]:
    srv = RunningServer(
        database_url, backend, checkout_submit_limit_per_session="50/minute", checkout_submit_limit_per_ip="4/minute"
    ).start()
    yield srv
    srv.stop()


def test_submits_beyond_the_per_ip_limit_get_429_across_sessions(tight_server: RunningServer) -> None:
    merchant = Merchant(tight_server)
    try:
        with Browser(tight_server) as browser:
            for _ in range(4):
                session = create_session(merchant)
                _, token = browser.open(session["id"])
                # CSRF-rejected posts count too: the limit is on attempts, not on well-formed ones
                assert browser.post(f"/c/pay/{session['id']}", card_fields(BAD_NUMBER)).status_code == 403
            fresh = create_session(merchant)
            _, token = browser.open(fresh["id"])
            blocked = browser.post(f"/c/pay/{fresh['id']}", {**card_fields(VISA), "csrf_token": token})
            _assert_rate_limited(blocked)
        assert authorizations(tight_server, fresh["payment_intent"]) == 0
    finally:
        merchant.http.close()


def test_storage_uri_selects_memory_or_async_redis() -> None:
    assert storage_uri(None) == "async+memory://"
    assert storage_uri("redis://127.0.0.1:6379/3") == "async+redis://127.0.0.1:6379/3"
    assert storage_uri("async+redis://r:6379") == "async+redis://r:6379"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """``PAYGATE_TEST_REDIS_URL``, else a private ``redis-server`` on a free port, else skip."""
    configured = os.environ.get("PAYGATE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis: set PAYGATE_TEST_REDIS_URL or install redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _reachable(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_with_redis_the_limit_is_shared_by_every_api_process(database_url: str, backend: str, redis_url: str) -> None:
    settings = {
        "checkout_submit_limit_per_session": "3/minute",
        "checkout_submit_limit_per_ip": "1000/minute",
        "redis_url": redis_url,
    }
    first = RunningServer(database_url, backend, **settings).start()
    second = RunningServer(database_url, backend, **settings).start()
    merchant = Merchant(first)
    try:
        session = create_session(merchant)
        with Browser(first) as one, Browser(second) as two:
            _, token_one = one.open(session["id"])
            _, token_two = two.open(session["id"])
            assert (
                one.post(f"/c/pay/{session['id']}", {**card_fields(BAD_NUMBER), "csrf_token": token_one}).status_code
                == 422
            )
            assert (
                two.post(f"/c/pay/{session['id']}", {**card_fields(BAD_NUMBER), "csrf_token": token_two}).status_code
                == 422
            )
            assert (
                one.post(f"/c/pay/{session['id']}", {**card_fields(BAD_NUMBER), "csrf_token": token_one}).status_code
                == 422
            )
            # the fourth submit is refused by the *other* process: the window lives in Redis
            _assert_rate_limited(two.post(f"/c/pay/{session['id']}", {**card_fields(VISA), "csrf_token": token_two}))
    finally:
        merchant.http.close()
        first.stop()
        second.stop()
