"""HttpConnectorClient: error mapping, retry policy, redacted logs."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest

from paygate.connectors.client import ClientSettings, HttpConnectorClient
from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable

pytestmark = pytest.mark.anyio
FAST = ClientSettings(max_attempts=3, backoff_base=0.0)


class Logger:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.records.append({"event": event, **kw})

    debug = info


def client(handler: Any, logger: Logger | None = None, settings: ClientSettings = FAST) -> HttpConnectorClient:
    return HttpConnectorClient(settings, transport=httpx2.MockTransport(handler), logger=logger or Logger())


async def test_connect_error_is_unavailable_and_retried_only_when_idempotent() -> None:
    calls: list[int] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        raise httpx2.ConnectError("refused", request=request)

    async with client(refuse) as http:
        with pytest.raises(ProcessorUnavailable):
            await http.request("POST", "http://psp/x", idempotent=False)
        assert len(calls) == 1
        with pytest.raises(ProcessorUnavailable):
            await http.request("POST", "http://psp/x", idempotent=True)
        assert len(calls) == 4


async def test_read_timeout_is_outcome_unknown() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("late", request=request)

    async with client(slow) as http:
        with pytest.raises(OutcomeUnknown):
            await http.request("GET", "http://psp/x", idempotent=True)


async def test_idempotent_request_recovers_after_a_dropped_response() -> None:
    answers = iter([httpx2.RemoteProtocolError("closed"), httpx2.Response(200, content=b"{}")])

    def flaky(request: httpx2.Request) -> httpx2.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with client(flaky) as http:
        status, _headers, body = await http.request("POST", "http://psp/x", idempotent=True)
    assert (status, body) == (200, b"{}")


async def test_http_errors_are_returned_not_raised() -> None:
    async with client(lambda request: httpx2.Response(402, content=b"declined")) as http:
        status, _h, body = await http.request("POST", "http://psp/x", idempotent=False)
    assert (status, body) == (402, b"declined")


async def test_logs_carry_no_card_data_or_credentials() -> None:
    logger = Logger()
    settings = ClientSettings(max_attempts=1, log_bodies=True)
    async with client(lambda request: httpx2.Response(200, content=b'{"last4": "4242"}'), logger, settings) as http:
        await http.request(
            "POST",
            "http://psp/v1/payments?key=4242424242424242",
            headers={"authorization": "Bearer sk_test_secret123"},
            content=b'{"card": {"number": "4242424242424242", "cvc": "987"}}',
            idempotent=False,
        )
    dumped = repr(logger.records)
    assert "4242424242424242" not in dumped and "987" not in dumped and "sk_test_secret123" not in dumped
    assert any(r["event"] == "connector.http" and r["status"] == 200 for r in logger.records)


class LevelledLogger(Logger):
    """A logger that, like structlog's filtering loggers, says which levels it emits."""

    def __init__(self, min_level: int) -> None:
        super().__init__()
        self.min_level = min_level

    def is_enabled_for(self, level: int) -> bool:
        return level >= self.min_level


@pytest.mark.parametrize(("min_level", "logged"), [(logging.INFO, True), (logging.WARNING, False)])
async def test_attempt_line_is_written_only_when_info_is_enabled(min_level: int, logged: bool) -> None:
    logger = LevelledLogger(min_level)
    async with client(lambda request: httpx2.Response(200, content=b"{}"), logger) as http:
        await http.request("POST", "http://psp/v1/payments", idempotent=False)
    assert any(r["event"] == "connector.http" for r in logger.records) is logged
