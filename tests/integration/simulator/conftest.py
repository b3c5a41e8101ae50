"""Fixtures: the simulator as a separate process on a free loopback port, plus a threaded webhook receiver."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from _sim_support import ADYEN_HMAC_KEY, HANG_SECONDS, SLOW_SECONDS, WEBHOOK_SECRET, Received, Receiver


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            with state.lock:
                remaining = state.failures.get(self.path, 0)
                if remaining > 0:
                    state.failures[self.path] = remaining - 1
                    status = 500
                else:
                    status = 200
                state.hooks.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, int(time.time()))
                )
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"[accepted]")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture(scope="session")
def sim_url(receiver: Receiver) -> Iterator[str]:
    port = _free_port()
    code = (
        "from paygate.simulator import serve; "
        f"serve('127.0.0.1', {port}, webhook_url={receiver.url + '/hooks/{dialect}'!r}, "
        f"webhook_secret={WEBHOOK_SECRET!r}, adyen_hmac_key={ADYEN_HMAC_KEY!r}, "
        f"slow_seconds={SLOW_SECONDS}, hang_seconds={HANG_SECONDS}, webhook_retry_base_seconds=0.05, "
        "api_keys=['sk_test_sim'])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx2.get(f"{url}/_sim/health", timeout=0.5).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("simulator did not start")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
