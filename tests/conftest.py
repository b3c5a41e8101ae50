"""Shared fixtures. Anything that touches the database runs once per backend: ``[sqlite]`` and ``[postgres]``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import stripe
import structlog

from paygate.kit.logs import configure as configure_logging
from tests.support.databases import create_postgres, create_sqlite, drop_postgres, selected_backends
from tests.support.server import RunningServer

configure_logging("info", "json")  # the production log pipeline (JSON, redacted) also in tests


@pytest.fixture(scope="session", params=selected_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        yield create_sqlite(tmp_path_factory.mktemp("sqlite"))
    elif backend == "postgres":
        url, name = create_postgres()
        yield url
        drop_postgres(name)
    else:
        raise ValueError(f"unknown backend {backend}")


@pytest.fixture(scope="session")
def server(database_url: str, backend: str) -> Iterator[RunningServer]:
    srv = RunningServer(database_url, backend).start()
    yield srv
    srv.stop()


class Merchant:
    """A fresh merchant on the running server with ready clients (httpx and the official stripe SDK)."""

    def __init__(self, server: RunningServer) -> None:
        created = server.new_merchant()
        self.id = created.id
        self.secret_key = created.secret_key
        self.publishable_key = created.publishable_key
        self.live_secret_key = created.live_secret_key
        self.server = server
        self.http = httpx2.Client(base_url=server.base_url, auth=(self.secret_key, ""), timeout=30)
        self.stripe = stripe.StripeClient(
            self.secret_key, base_addresses={"api": server.base_url}, max_network_retries=0
        )

    def post(self, path: str, data: dict[str, object] | None = None, **kw: object) -> httpx2.Response:
        return self.http.post(path, data=data or {}, **kw)  # type: ignore[arg-type]

    def get(self, path: str, **kw: object) -> httpx2.Response:
        return self.http.get(path, **kw)  # type: ignore[arg-type]


@pytest.fixture
def merchant(server: RunningServer) -> Iterator[Merchant]:
    m = Merchant(server)
    yield m
    m.http.close()


@pytest.fixture
def other_merchant(server: RunningServer) -> Iterator[Merchant]:
    m = Merchant(server)
    yield m
    m.http.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path("test-artifacts")
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def rendered_logs() -> Iterator[list[str]]:
    """Tap the production structlog pipeline after its renderer: exactly the lines written to stderr (the
    card-leak tests scan them)."""
    lines: list[str] = []

    def tap(_logger: Any, _name: str, event: Any) -> Any:
        lines.append(str(event))
        return event

    processors = structlog.get_config()["processors"]
    processors.append(tap)  # the same list object cached loggers use
    try:
        yield lines
    finally:
        processors.remove(tap)
