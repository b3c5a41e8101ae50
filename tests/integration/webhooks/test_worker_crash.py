"""A worker killed with SIGKILL mid-delivery: another worker finishes the job after the lease; nothing is lost
and nothing is recorded twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import Merchant
from tests.integration.webhooks._support import WEBHOOK_SETTINGS, Receiver
from tests.support.databases import create_postgres, create_sqlite, drop_postgres
from tests.support.server import RunningServer


@pytest.fixture
def isolated(backend: str, tmp_path: Path) -> Iterator[tuple[str, RunningServer, Merchant]]:
    """A fresh database with its own server: the workers under test see only this test's events, not the
    backlog every other test left unrelayed in the shared session database."""
    if backend == "sqlite":
        url, name = create_sqlite(tmp_path), None
    else:
        url, name = create_postgres()
    server = RunningServer(url, backend, **WEBHOOK_SETTINGS).start()
    merchant = Merchant(server)
    yield url, server, merchant
    merchant.http.close()
    server.stop()
    if name:
        drop_postgres(name)


def _worker(database_url: str, key_file: str) -> subprocess.Popen[bytes]:
    """A ``paygate worker`` process sharing the server's database and key file (secrets are sealed under it)."""
    env = {
        **os.environ,
        "PAYGATE_DATABASE_URL": database_url,
        "PAYGATE_WEBHOOK_ALLOWLIST": "127.0.0.1",
        "PAYGATE_WEBHOOK_TIMEOUT_SECONDS": "0.5",  # the lease covers timeout x hops + 5 s
        "PAYGATE_WORKER_LEASE_SECONDS": "1",
        "PAYGATE_LOG_LEVEL": "warning",
        "PAYGATE_VAULT_KEY_FILE": key_file,
    }
    return subprocess.Popen([sys.executable, "-m", "paygate.cli", "worker"], env=env, stdout=subprocess.DEVNULL)


def test_sigkilled_worker_mid_delivery_is_finished_by_another_after_the_lease(
    isolated: tuple[str, RunningServer, Merchant],
) -> None:
    database_url, server, wh_merchant = isolated
    key_file = server.gateway.settings.vault_key_file
    receiver = Receiver(hold=True).start()
    first = second = None
    try:
        wh_merchant.post(
            "/v1/webhook_endpoints", {"url": receiver.url, "enabled_events[0]": "payment_intent.succeeded"}
        )
        wh_merchant.post(
            "/v1/payment_intents",
            {"amount": 900, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
        )
        first = _worker(database_url, key_file)
        assert receiver.arrived.wait(30), "the first worker never delivered"
        first.send_signal(signal.SIGKILL)  # mid-request: the receiver is still holding the answer
        first.wait(10)
        receiver.release.set()
        second = _worker(database_url, key_file)
        deadline = time.monotonic() + 40
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        event_id = receiver.requests[0].headers["webhook-id"]
        assert [r.headers["webhook-id"] for r in receiver.requests] == [event_id, event_id]

        def delivery() -> dict[str, object]:
            data = wh_merchant.get(f"/v1/events/{event_id}/deliveries").json()["data"]
            assert len(data) == 1
            return dict(data[0])

        while delivery()["status"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.1)
        d = delivery()
        assert d["status"] == "succeeded"
        assert [a["status_code"] for a in d["attempts"]] == [200]  # the killed attempt left no record
        assert orjson.loads(receiver.requests[1].body)["id"] == event_id
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        receiver.stop()
