"""The aiohttp transport behind HttpConnectorClient, against small raw servers: framing, keep-alive, and the
not-sent / maybe-sent classification the failover and retry decisions depend on."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from paygate.connectors.client import ClientSettings, HttpConnectorClient
from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable

pytestmark = pytest.mark.anyio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Server:
    """A loopback server; ``handler(reader, writer, connection_number)`` serves one connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        finally:
            writer.close()

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/x"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.fixture
async def http() -> AsyncIterator[HttpConnectorClient]:
    settings = ClientSettings(read_timeout=0.5, connect_timeout=0.5, pool_timeout=0.3, max_attempts=2, backoff_base=0)
    async with HttpConnectorClient(settings) as client:
        assert client._pool is not None
        yield client


async def test_sequential_requests_reuse_one_keep_alive_connection(http: HttpConnectorClient) -> None:
    async def keep_serving(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return  # the client closed its pooled connection
            writer.write(answer(request.split(b"\r\n\r\n", 1)[1] or b"empty"))
            await writer.drain()

    async with Server(keep_serving) as server:
        for i in range(5):
            status, _headers, body = await http.request("POST", server.url, content=b"n%d" % i, idempotent=False)
            assert (status, body) == (200, b"n%d" % i)
        assert server.connections == 1


async def test_chunked_and_gzip_bodies_are_decoded(http: HttpConnectorClient) -> None:
    payload = gzip.compress(b'{"status":"captured"}')

    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
        parts = [payload[:7], payload[7:]]
        writer.write(head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n")
        await writer.drain()

    async with Server(chunked) as server:
        status, headers, body = await http.request("GET", server.url, idempotent=True)
    assert (status, body) == (200, b'{"status":"captured"}')
    assert headers["x-a"] == "1, 2"


async def test_refused_connection_is_not_sent(http: HttpConnectorClient) -> None:
    async def never_called(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        raise AssertionError("no connection expected")

    async with Server(never_called) as server:
        url = server.url
    with pytest.raises(ProcessorUnavailable):  # the port is closed now
        await http.request("POST", url, content=b"{}", idempotent=False)


async def test_no_answer_within_the_read_timeout_is_outcome_unknown(http: HttpConnectorClient) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with Server(silent) as server:
        with pytest.raises(OutcomeUnknown):
            await http.request("POST", server.url, content=b"{}", idempotent=False)


async def test_a_connection_closed_without_an_answer_is_outcome_unknown_and_retried_when_idempotent(
    http: HttpConnectorClient,
) -> None:
    async def drop_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        if n > 1:
            writer.write(answer(b"second"))
            await writer.drain()

    async with Server(drop_first) as server:
        with pytest.raises(OutcomeUnknown):
            await http.request("POST", server.url, content=b"{}", idempotent=False)
        assert (await http.request("POST", server.url, content=b"{}", idempotent=True))[2] == b"second"


async def test_a_connection_the_server_closed_is_not_reused(http: HttpConnectorClient) -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(answer(b"c%d" % n))
        await writer.drain()  # then the server closes the connection (keep-alive not honoured)

    async with Server(one_per_connection) as server:
        bodies = []
        for _ in range(3):
            bodies.append((await http.request("POST", server.url, content=b"{}", idempotent=False))[2])
            await asyncio.sleep(0.05)  # the close reaches the client's pooled connection
    assert bodies == [b"c1", b"c2", b"c3"]


async def test_no_free_connection_slot_within_the_pool_timeout_is_not_sent() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        await release.wait()
        writer.write(answer(b"late"))
        await writer.drain()

    settings = ClientSettings(max_connections=1, pool_timeout=0.1, read_timeout=5, max_attempts=1)
    async with HttpConnectorClient(settings) as http, Server(slow) as server:
        first = asyncio.create_task(http.request("POST", server.url, content=b"{}", idempotent=False))
        await asyncio.sleep(0.05)
        with pytest.raises(ProcessorUnavailable):
            await http.request("POST", server.url, content=b"{}", idempotent=False)
        release.set()
        assert (await first)[2] == b"late"


async def test_a_configured_proxy_routes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    async with HttpConnectorClient(ClientSettings()) as http:
        assert http._pool is None
