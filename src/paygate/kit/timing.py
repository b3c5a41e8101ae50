"""Time spent waiting on processors, per request, reported as ``Server-Timing: processor;dur=<ms>``.

The API's request middleware (:class:`paygate.api.RequestContextMiddleware`) opens an accumulator for each HTTP
request in a context variable (:func:`start_request`); :func:`add_processor_time` (called by the router around every
connector call) adds to it; the header goes out with the response start. A benchmark subtracts it from the client-
side latency to get the latency the gateway itself adds; operators see it in browser dev tools and in proxies that
understand Server-Timing.

Contract: the header is present on every HTTP response of the API (``dur=0.000`` when no processor was called). Work
outside a request (the worker) finds no accumulator and records nothing. Concurrent connector calls within one
request (none today) would add up, so ``dur`` is busy time, not wall time.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

__all__ = ["add_processor_time", "end_request", "header", "start_request"]

_processor_ms: ContextVar[list[float] | None] = ContextVar("paygate_processor_ms", default=None)


def add_processor_time(ms: float) -> None:
    """Add ``ms`` milliseconds of processor wait to the current request, if there is one."""
    acc = _processor_ms.get()
    if acc is not None:
        acc[0] += ms


def start_request() -> tuple[list[float], Token[list[float] | None]]:
    """Open the current request's accumulator; returns it and the token for :func:`end_request`."""
    acc = [0.0]
    return acc, _processor_ms.set(acc)


def end_request(token: Token[list[float] | None]) -> None:
    _processor_ms.reset(token)


def header(acc: list[float]) -> tuple[bytes, bytes]:
    """The ``Server-Timing`` response header for an accumulator."""
    return b"server-timing", b"processor;dur=%.3f" % acc[0]
