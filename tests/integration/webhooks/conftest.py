"""Fixtures: a paygate server configured for webhooks (allow-listed loopback, inbound secret, instant retries),
merchants on it, the worker jobs bound to it, and recording receivers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paygate.events.deliveries import DeliveryJob, RetryPolicy
from paygate.events.relay import RelayJob
from paygate.hooks.job import InboundApplyJob
from paygate.worker.runner import Job
from tests.conftest import Merchant
from tests.integration.webhooks._support import WEBHOOK_SETTINGS, Receiver
from tests.support.server import RunningServer


@pytest.fixture(scope="session")
def wh_server(database_url: str, backend: str) -> Iterator[RunningServer]:
    srv = RunningServer(database_url, backend, **WEBHOOK_SETTINGS).start()
    yield srv
    srv.stop()


@pytest.fixture
def wh_merchant(wh_server: RunningServer) -> Iterator[Merchant]:
    # The server lives for the session and its test payments share one sandbox account: a test's fault cards
    # (timeouts count as processor failures) must not open the circuit for the next test's payments.
    wh_server.gateway.router.breakers.reset()
    m = Merchant(wh_server)
    yield m
    m.http.close()


@pytest.fixture
def jobs(wh_server: RunningServer) -> Iterator[list[Job]]:
    delivery = DeliveryJob(wh_server.gateway.settings, policy=RetryPolicy((0, 0, 0, 0, 0), jitter=lambda d: d))
    yield [RelayJob(), delivery, InboundApplyJob()]
    wh_server.call(delivery.close())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
