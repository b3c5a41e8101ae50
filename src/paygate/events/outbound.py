"""One webhook HTTP request, SSRF-checked on every hop: :func:`post`.

Contract: ``post`` never raises for network or HTTP problems; it returns an :class:`Outcome` with the final
status code (``None`` when no HTTP answer arrived), the latency, an error description, the first 500
characters of the answer and a parsed ``Retry-After`` (seconds). Redirects (up to :data:`MAX_REDIRECTS`) are
followed by re-sending the same POST, and each new location is checked again by :mod:`paygate.events.ssrf`.
The connection is made to the address that passed the check, with the original host in ``Host`` and TLS SNI.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx2

from paygate.events.ssrf import Allowlist, BlockedDestination, check_scheme, resolve
from paygate.kit.clock import clock

__all__ = ["MAX_REDIRECTS", "Outcome", "post"]

MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None
    retry_after: int | None = None
    blocked: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp()) - clock.now())


def _dial_url(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


async def post(
    client: httpx2.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allowlist: Allowlist,
    livemode: bool,
    allow_http: bool,
    timeout: float,  # noqa: ASYNC109 - a per-request HTTP timeout handed to the client
) -> Outcome:
    """POST ``body`` to ``url`` (see the module contract)."""
    started = time.perf_counter()

    def ms() -> int:
        return int((time.perf_counter() - started) * 1000)

    deadline = started + timeout  # the whole delivery, redirects and a slowly dripped answer included
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            check_scheme(current, livemode=livemode, allow_http=allow_http)
            dest = await resolve(current, allowlist)
        except (ValueError, BlockedDestination) as exc:
            return Outcome(None, ms(), error=f"blocked: {exc}", blocked=True)
        parts = urlsplit(current)
        host_header = parts.netloc.rpartition("@")[2]
        extensions = {"sni_hostname": dest.host} if parts.scheme == "https" else {}
        remaining = deadline - time.perf_counter()
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                resp = await client.post(
                    _dial_url(current, dest.address),
                    content=body,
                    headers={**headers, "Host": host_header},
                    timeout=remaining,
                    extensions=extensions,
                    follow_redirects=False,
                )
        except (httpx2.TimeoutException, TimeoutError):
            return Outcome(None, ms(), error=f"timeout: no answer within {timeout:g} s")
        except httpx2.HTTPError as exc:
            return Outcome(None, ms(), error=f"{type(exc).__name__}: {str(exc)[:200]}")
        if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
            current = urljoin(current, resp.headers["location"])
            continue
        return Outcome(
            resp.status_code,
            ms(),
            error=None if 200 <= resp.status_code < 300 else f"HTTP {resp.status_code}",
            excerpt=resp.text[:500] if resp.content else None,
            retry_after=_retry_after(resp.headers.get("retry-after")),
        )
    return Outcome(None, ms(), error=f"too many redirects (more than {MAX_REDIRECTS})")
