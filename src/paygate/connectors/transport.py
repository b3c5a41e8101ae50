"""The HTTP transport behind :class:`~paygate.connectors.client.HttpConnectorClient`: pooled keep-alive
connections through aiohttp.

Why aiohttp and not httpx2 for processor calls: measured on the 2-core development machine, a POST costs about
145 µs of CPU through aiohttp (C-accelerated HTTP parser) against 550 to 700 µs through httpx2 → httpcore2 → h11 →
anyio — a quarter of a payment's CPU. httpx2 stays in use when a proxy is configured or a test injects a transport.

Contract of :meth:`AiohttpPool.request`: one request, the complete response back as ``(status, headers with
lower-case names — repeated ones joined with ", " — , body)``; no redirects, no cookies, proxies ignored
(``trust_env`` off; the client falls back to httpx2 when one is configured); ``gzip`` / ``deflate`` answers are
decoded. TLS uses httpx2's default context, so every HTTPS call paygate makes trusts the same store
(``SSL_CERT_FILE`` / ``SSL_CERT_DIR``).

Errors, for the caller's "did it reach the processor?" decision:

* :class:`NotSent` — the request provably never reached the server: address resolution, connection refused or
  failed, connect timeout, TLS handshake, no connection slot within the pool timeout.
* :class:`MaybeSent` — it may have been written: read timeout, connection closed or reset before a complete
  response, a malformed response.

Timeouts: ``pool`` bounds waiting for one of ``max_connections`` slots, ``connect`` opening a connection (TLS
included), ``read`` each socket read of the response (as httpx2 does). ``write`` is covered by the socket buffers
of these small bodies and is bounded by ``read``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

__all__ = ["AiohttpPool", "MaybeSent", "NotSent", "Timeouts"]


class NotSent(Exception):
    """Nothing reached the server. ``kind`` names the failure for logs (``ConnectError``, ``PoolTimeout`` …)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class MaybeSent(Exception):
    """The request may have reached the server; no usable answer. ``kind`` as for :class:`NotSent`."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    read: float
    write: float
    pool: float


class AiohttpPool:
    """At most ``max_connections`` requests in flight (a request waits up to the pool timeout for a slot) and
    idle connections kept for ``keepalive_expiry`` seconds. The session is created on first use, on the loop of
    that call, and closed by :meth:`aclose`."""

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "paygate",
    ) -> None:
        self.keepalive_expiry = keepalive_expiry
        self._max_connections = max_connections
        self._ssl = ssl_context
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    def _open_session(self) -> aiohttp.ClientSession:
        if self._ssl is None:
            import httpx2  # the same trust store as every other HTTPS call paygate makes

            self._ssl = httpx2.create_ssl_context()
        connector = aiohttp.TCPConnector(
            limit=0,  # the slots below bound concurrency, with their own timeout
            keepalive_timeout=self.keepalive_expiry,
            ssl=self._ssl,
            ttl_dns_cache=60,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
            headers={"User-Agent": self._user_agent},
        )

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        timeouts: Timeouts,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; see the module docstring. Raises :class:`NotSent` or :class:`MaybeSent`."""
        if self._closed:
            raise NotSent("PoolClosed")
        if self._session is None:
            self._session = self._open_session()
            self._slots = asyncio.Semaphore(self._max_connections)
        assert self._slots is not None
        try:
            async with asyncio.timeout(timeouts.pool):
                await self._slots.acquire()
        except TimeoutError:
            raise NotSent("PoolTimeout", "no connection slot free") from None
        try:
            return await self._exchange(self._session, method, url, headers, content, timeouts)
        finally:
            self._slots.release()

    @staticmethod
    async def _exchange(
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: Mapping[str, str],
        content: bytes | None,
        timeouts: Timeouts,
    ) -> tuple[int, dict[str, str], bytes]:
        timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        try:
            async with session.request(
                method, url, headers=dict(headers), data=content, allow_redirects=False, timeout=timeout
            ) as response:
                body = await response.read()
                out: dict[str, str] = {}
                for name, value in response.headers.items():
                    key = name.lower()
                    out[key] = f"{out[key]}, {value}" if key in out else value
                return response.status, out, body
        except aiohttp.ConnectionTimeoutError as exc:
            raise NotSent("ConnectTimeout", str(exc)) from None
        except aiohttp.ClientConnectorError as exc:  # DNS, refused, unreachable, TLS handshake
            raise NotSent(type(exc).__name__, str(exc)) from None
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise NotSent("UnsupportedURL", str(exc).split("?", 1)[0]) from None
        except (aiohttp.ClientError, TimeoutError) as exc:  # read timeout, disconnects, malformed answers
            raise MaybeSent(type(exc).__name__, str(exc)) from None

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
