"""A real paygate HTTP server (uvicorn) in a background thread, on a free loopback port.

Tests talk to it over real HTTP (httpx or the official stripe SDK), so concurrency tests fire genuinely
concurrent requests through the whole stack. ``call`` runs a coroutine on the server's event loop, for setup
(creating merchants) and for inspecting state.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from paygate.api import create_app
from paygate.app import Gateway
from paygate.merchants.service import CreatedMerchant, create_merchant
from paygate.settings import Settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, database_url: str, backend: str, **settings: object) -> None:
        self.backend = backend
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Every server on one database shares one key file, as every process of a real deployment does.
        key_dir = (
            Path(tempfile.gettempdir()) / "paygate-test-keys" / hashlib.sha256(database_url.encode()).hexdigest()[:16]
        )
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # 20 write slots let the concurrency tests' requests meet in the database rather than queue for a slot;
        # on PostgreSQL a server may then hold ~40 connections, so secondary servers ask for fewer (the
        # suite's servers share one PostgreSQL with max_connections = 100)
        defaults: dict[str, object] = {"vault_key_file": str(key_dir / "vault-keys.json"), "db_pool_size": 20}
        settings = Settings(  # type: ignore[arg-type]
            **{
                **defaults,
                **settings,
                "database_url": database_url,
                "port": self.port,
                "access_log": False,
            }
        )
        self.gateway = Gateway(settings)
        self.app = create_app(self.gateway)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            loop="asyncio",
            lifespan="on",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name=f"paygate-{backend}", daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())
        self.loop.run_until_complete(self.gateway.close())

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("paygate test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def new_merchant(self, name: str = "Test Merchant") -> CreatedMerchant:
        async def go() -> CreatedMerchant:
            async with self.gateway.db.write() as conn:
                return await create_merchant(conn, name)

        return self.call(go())
