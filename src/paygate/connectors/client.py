"""The one HTTP seam every connector talks through: :class:`HttpConnectorClient`.

Contract of :meth:`HttpConnectorClient.request` (implements :class:`paygate.connectors.base.ConnectorClient`):

* Returns ``(status_code, headers, body)`` for every HTTP answer, whatever the status; it never raises for a
  status code (the connector interprets them).
* Raises :class:`ProcessorUnavailable` when the request provably never reached the processor: connection refused
  or failed, connect timeout, no pooled connection available in time. Failover is safe.
* Raises :class:`OutcomeUnknown` when the request may have reached the processor: read timeout, write error,
  connection reset / closed without a response after the request was (partly) sent.
* Retries, with exponential backoff and full jitter, **only** when the caller passes ``idempotent=True``. The
  caller asserts with that flag that repeating the request cannot move money twice: a read (``GET``), or a
  ``POST`` carrying an ``Idempotency-Key`` the processor dedupes on. Under that assertion a retry after a read
  timeout or a dropped connection is not only safe but the fastest way to learn the outcome: the processor
  replays the stored result of the first attempt instead of acting again. Retried faults: every transport
  error, and HTTP 429 / 500 / 502 / 503 / 504. When all attempts fail the last answer (or the exception of the
  last attempt, mapped as above) is returned / raised. With ``idempotent=False`` nothing is ever retried, because
  a second non-deduplicated request could charge twice.
* Logs every attempt through structlog (``connector.http``) with method, URL path (no query string: it may carry
  lookup keys), status, latency and attempt; bodies are logged only at debug level and only after
  :func:`paygate.kit.redaction.redact_text`. Headers are never logged unredacted.

One instance is meant to be shared by all connectors of a process; its pool limits default to hundreds of
concurrent in-flight requests. Requests go through :mod:`paygate.connectors.transport` (aiohttp's pooled
keep-alive connections, about a quarter of httpx2's CPU per call) unless ``ClientSettings.aiohttp`` is off, a proxy
is configured in the environment (``HTTPS_PROXY`` …; httpx2 honours it) or a transport is injected (tests); then
through one pooled ``httpx2.AsyncClient``. The error mapping above is the same for both.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

import httpx2
import structlog

from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable
from paygate.connectors.transport import AiohttpPool, MaybeSent, NotSent, Timeouts
from paygate.kit.redaction import redact_text

__all__ = ["ClientSettings", "HttpConnectorClient"]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout, httpx2.ProxyError)
_MAYBE_SENT = (
    httpx2.ReadTimeout,
    httpx2.WriteTimeout,
    httpx2.ReadError,
    httpx2.WriteError,
    httpx2.RemoteProtocolError,
    httpx2.LocalProtocolError,
    httpx2.CloseError,
)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    write_timeout: float = 10.0
    pool_timeout: float = 5.0
    max_connections: int = 512
    # as many idle connections kept as may be in use: with fewer, a burst above the keep-alive limit (256
    # payments in flight against a slow processor) closes and reopens connections on every call
    max_keepalive_connections: int = 512
    max_attempts: int = 3  # total attempts for idempotent requests (1 = no retry)
    backoff_base: float = 0.1  # seconds; attempt n waits uniform(0, min(backoff_max, base * 2**n))
    backoff_max: float = 2.0
    log_bodies: bool = False  # debug-log redacted bodies
    aiohttp: bool = True  # the aiohttp transport (module docstring); False: always httpx2
    keepalive_expiry: float = 5.0  # seconds an idle connection may be reused


class HttpConnectorClient:
    """Pooled HTTP client for connectors. Use as an async context manager or call :meth:`aclose`."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        logger: Any = None,
    ) -> None:
        self.settings = s = settings or ClientSettings()
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(
                connect=s.connect_timeout, read=s.read_timeout, write=s.write_timeout, pool=s.pool_timeout
            ),
            limits=httpx2.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_keepalive_connections
            ),
            transport=transport,
        )
        self._log = logger if logger is not None else structlog.get_logger("paygate.connectors.client")
        self._pool: AiohttpPool | None = None
        if s.aiohttp and transport is None and not getproxies():
            self._pool = AiohttpPool(max_connections=s.max_connections, keepalive_expiry=s.keepalive_expiry)
        self._timeouts = Timeouts(
            connect=s.connect_timeout, read=s.read_timeout, write=s.write_timeout, pool=s.pool_timeout
        )
        self._default_timeout = httpx2.Timeout(
            connect=s.connect_timeout, read=s.read_timeout, write=s.write_timeout, pool=s.pool_timeout
        )

    async def __aenter__(self) -> HttpConnectorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        await self._client.aclose()

    def _timeout(self, override: float | None) -> httpx2.Timeout:
        s = self.settings
        if override is None:
            return self._default_timeout
        read = override
        return httpx2.Timeout(connect=s.connect_timeout, read=read, write=s.write_timeout, pool=s.pool_timeout)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return random.uniform(0, min(s.backoff_max, s.backoff_base * (2**attempt)))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotent: bool,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the ConnectorClient protocol
    ) -> tuple[int, Mapping[str, str], bytes]:
        attempts = max(1, self.settings.max_attempts) if idempotent else 1
        path = urlsplit(url).path
        if self.settings.log_bodies and content:
            self._log.debug("connector.http.body", method=method, path=path, body=redact_text(content.decode()))
        last_error: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self._backoff(attempt))
            started = time.perf_counter()
            try:
                status, response_headers, body = await self._send(method, url, headers, content, timeout)
            except (NotSent, *_NOT_SENT) as exc:
                kind = exc.kind if isinstance(exc, NotSent) else type(exc).__name__
                last_error = ProcessorUnavailable(f"{method} {path}: not sent ({kind})")
                self._log_attempt(method, path, None, started, attempt, kind)
                continue
            except (MaybeSent, *_MAYBE_SENT, httpx2.TransportError) as exc:
                kind = exc.kind if isinstance(exc, MaybeSent) else type(exc).__name__
                last_error = OutcomeUnknown(f"{method} {path}: no usable answer ({kind})")
                self._log_attempt(method, path, None, started, attempt, kind)
                continue
            self._log_attempt(method, path, status, started, attempt, None)
            if self.settings.log_bodies and body:
                self._log.debug(
                    "connector.http.response_body",
                    path=path,
                    body=redact_text(body.decode(errors="replace")),
                )
            if status in _RETRY_STATUSES and attempt + 1 < attempts:
                last_error = None
                continue
            return status, response_headers, body
        assert last_error is not None
        raise last_error

    async def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        timeout: float | None,  # noqa: ASYNC109
    ) -> tuple[int, dict[str, str], bytes]:
        """One attempt: ``(status, lower-cased headers, body)``; raises the transport's not-sent / maybe-sent
        errors (:mod:`paygate.connectors.transport` or httpx2)."""
        if self._pool is not None:
            timeouts = (
                self._timeouts
                if timeout is None
                else Timeouts(
                    connect=self._timeouts.connect, read=timeout, write=self._timeouts.write, pool=self._timeouts.pool
                )
            )
            return await self._pool.request(method, url, headers or {}, content, timeouts)
        response = await self._client.request(
            method, url, headers=dict(headers or {}), content=content, timeout=self._timeout(timeout)
        )
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content

    def _log_attempt(
        self, method: str, path: str, status: int | None, started: float, attempt: int, error: str | None
    ) -> None:
        """One ``connector.http`` info line per attempt. Skipped, redaction included (~5 µs), when the logger
        says info is filtered out (structlog's filtering loggers; any other logger is always called)."""
        enabled = getattr(self._log, "is_enabled_for", None)
        if enabled is not None and not enabled(logging.INFO):
            return
        self._log.info(
            "connector.http",
            method=method,
            path=redact_text(path),
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            attempt=attempt + 1,
            error=error,
        )
