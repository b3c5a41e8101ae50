"""A minimal asyncio HTTP/1.1 keep-alive client, written for the load generator only.

Why not httpx2 (which the rest of paygate uses): the load generator shares a 2-core machine with the gateway it
measures, so every microsecond of client CPU is taken from the gateway and shows up as lower throughput.
Measured on the development machine, an httpx2 ``AsyncClient`` request costs roughly 10x the CPU of this client,
and at a few thousand requests per second that is most of a core. No library fits the narrow need (one request at
a time per connection, pre-built header block, no redirects, no cookies, no TLS): this client is an
:class:`asyncio.Protocol` around ``httptools``' C response parser (already installed with ``uvicorn[standard]``).

Contract:

* :class:`Connection` carries one request at a time over one TCP connection and keeps it open between requests
  (keep-alive). If the server closed an idle connection, the next request reconnects before sending.
* A connection lost *after* the request was sent raises :class:`ConnectionError`; the request is never resent
  (the caller decides, since a POST may have taken effect).
* :meth:`Connection.request` raises :class:`TimeoutError` when no complete response arrived within ``timeout``
  seconds; the connection is then closed, because a late answer must not be read as the next request's.
* Responses are always read in full (``Content-Length`` or chunked, as the parser handles both).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = ["Connection", "Response"]


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[bytes, bytes]  # lower-cased names; only the last value of a repeated header is kept
    body: bytes


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.closed = False
        self.keep_alive = True

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed by the server" if exc is None else f"connection lost: {exc}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = {}
        self.chunks = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.parser.get_status_code(), self.headers, b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Connection:
    """One keep-alive connection to ``host:port``. Not safe for concurrent use: one request at a time."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.host_header = f"{host}:{port}".encode()
        self._protocol: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        _transport, protocol = await asyncio.wait_for(
            loop.create_connection(_Protocol, self.host, self.port), self.timeout
        )
        return protocol

    async def request(self, method: bytes, path: bytes, headers: bytes = b"", body: bytes = b"") -> Response:
        """Send one request and read its whole response.

        ``headers`` is a pre-built block of ``Name: value\\r\\n`` lines (``Host`` and ``Content-Length`` are added
        here)."""
        protocol = self._protocol
        if protocol is None or protocol.closed or not protocol.keep_alive:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.close()
            protocol = self._protocol = await self._connect()
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        protocol.waiter = waiter
        protocol.transport.write(
            b"%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s"
            % (method, path, self.host_header, headers, len(body), body)
        )
        timer = loop.call_later(self.timeout, self._expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[Response]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no complete response within the timeout"))
            self.close()

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.waiter = None
            if protocol.transport is not None:
                protocol.transport.close()
