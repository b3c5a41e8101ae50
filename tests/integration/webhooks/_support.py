"""Helpers for the webhook tests: a recording HTTP receiver, a webhook-ready server, and job draining."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from paygate.worker.runner import Job
from tests.support.server import RunningServer

SIM_SECRET = "whsec_sim_inbound_test"
WEBHOOK_SETTINGS: dict[str, object] = {
    "webhook_allowlist": "127.0.0.1",
    "simulator_webhook_secret": SIM_SECRET,
    "webhook_retry_schedule": "0,0,0,0,0",
    "webhook_timeout_seconds": 5.0,
    "db_pool_size": 5,  # a second server beside the suite's main one: keep PostgreSQL's connections in reach
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every request and answers from ``statuses`` (then 200).

    ``hold`` (when set) makes the first request wait until ``release`` is set (a slow merchant endpoint)."""

    statuses: list[int] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                first = not outer.requests
                outer.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                outer.arrived.set()
                if first and outer.hold:
                    outer.release.wait(30)
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                for k, v in outer.extra_headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def drain(server: RunningServer, jobs: list[Job], until: Callable[[], bool], rounds: int = 60) -> None:
    """Run the jobs' rounds on the server's loop until ``until()`` holds (fails after ``rounds`` idle-free tries)."""

    async def once() -> None:
        for job in jobs:
            await job.run_once(server.gateway)

    for _ in range(rounds):
        server.call(once())
        if until():
            return
        server.call(asyncio.sleep(0.05))
    raise AssertionError("condition not reached while draining the worker jobs")
