"""Per-app runtime shared by the dialects: config, store, webhook sender, fault injection, response delivery.

Transport faults are applied in two places:

* *before acceptance* (:meth:`Runtime.before_accept`): random ``error_rate`` answers 500 and ``reset_rate``
  resets the connection; nothing is recorded and the idempotency key stays unused;
* *at delivery* (:meth:`Runtime.deliver`): the stored answer's card fault (slow / timeout / drop) and the random
  ``drop_response_rate`` apply every time the answer is sent, including idempotent replays.

A connection drop is signalled to the outer ASGI wrapper (:func:`paygate.simulator.app.create_app`) with the
private ``x-sim-drop`` response header, which never reaches the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from paygate.connectors.testcards import Fault
from paygate.simulator.config import SimConfig
from paygate.simulator.store import JSON_HEADERS, Store, Stored, StoreEvent
from paygate.simulator.webhooks import Renderer, WebhookSender

__all__ = ["DROP_HEADER", "Runtime", "fingerprint", "json_answer", "parse_form"]

DROP_HEADER = "x-sim-drop"


def json_answer(
    status: int,
    obj: Any,
    *,
    headers: dict[str, str] | None = None,
    store: bool = True,
    fault: Fault | None = None,
) -> Stored:
    return Stored(
        status, orjson.dumps(obj), {**JSON_HEADERS, **headers} if headers else dict(JSON_HEADERS), store, fault
    )


def fingerprint(request: Request, body: bytes) -> bytes:
    """SHA-256 of method, path and body: what an idempotency key is bound to (32 bytes, kept per answer)."""
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.url.path.encode() + b"\n")
    digest.update(body)
    return digest.digest()


def parse_form(body: bytes) -> dict[str, Any]:
    """Decode Stripe-style nested form fields (``a[b][c]=1`` → ``{"a": {"b": {"c": "1"}}}``; ``a[]=x`` lists)."""
    out: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body.decode(), keep_blank_values=True):
        if "[" in raw_key:
            head, rest = raw_key.split("[", 1)
            parts = [head, *rest.rstrip("]").split("][")]
        else:
            parts = [raw_key]
        node: dict[str, Any] = out
        for index, part in enumerate(parts[:-1]):
            if parts[index + 1] == "":
                items = node.setdefault(part, [])
                if isinstance(items, list):
                    items.append(value)
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        else:
            node[parts[-1]] = value
    return out


class Runtime:
    """Everything one simulator app instance owns. ``initial`` is what ``POST /_sim/reset`` restores."""

    def __init__(self, config: SimConfig, renderers: dict[str, Renderer]) -> None:
        self.initial = config.copy()
        self.config = config
        self.rng = random.Random(config.seed)  # fault injection, not security
        self.webhooks = WebhookSender(lambda: self.config, renderers, self.rng)
        self.store = Store(
            on_event=self._on_event,
            retain=lambda: self.config.retain_payments,
            tally_key=lambda: self.config.tally_metadata_key,
        )
        self._sleepers: set[asyncio.Task[Any]] = set()

    def _on_event(self, event: StoreEvent) -> None:
        with contextlib.suppress(Exception):  # a webhook problem must never fail the API request
            self.webhooks.submit(event)

    def reset(self) -> None:
        self.config = self.initial.copy()
        self.rng.seed(self.config.seed)
        self.store.reset()
        self.webhooks.reset()

    # ------------------------------------------------------------------ auth
    def authorized(self, key: str | None) -> bool:
        if not key:
            return False
        allowed = self.config.api_keys
        return allowed is None or key in allowed

    # ------------------------------------------------------------------ faults
    async def latency(self) -> None:
        c = self.config
        delay = c.latency_ms / 1000
        if c.latency_jitter_ms > 0:
            jitter = c.latency_jitter_ms / 1000
            if c.latency_distribution == "exponential":
                delay += self.rng.expovariate(1 / jitter)
            else:
                delay += self.rng.uniform(0, jitter)
        if delay > 0:
            await asyncio.sleep(delay)

    def before_accept(self, not_processed: Callable[[], Stored]) -> Response | None:
        """A fault answer when this request is picked for a 500 / reset before acceptance, else ``None``."""
        c = self.config
        if c.reset_rate and self.rng.random() < c.reset_rate:
            return Response(status_code=500, headers={DROP_HEADER: "reset"})
        if c.error_rate and self.rng.random() < c.error_rate:
            return to_response(not_processed())
        return None

    async def deliver(self, stored: Stored) -> Response:
        if stored.fault is Fault.SLOW:
            await asyncio.sleep(self.config.slow_seconds)
        elif stored.fault is Fault.TIMEOUT:
            await asyncio.sleep(self.config.hang_seconds)
        if stored.fault is Fault.DROP_RESPONSE or (
            self.config.drop_response_rate and self.rng.random() < self.config.drop_response_rate
        ):
            return Response(status_code=500, headers={DROP_HEADER: "close"})
        return to_response(stored)

    async def handle(
        self,
        request: Request,
        dialect: str,
        key: str | None,
        body: bytes,
        compute: Callable[[], Awaitable[Stored]],
        *,
        conflict: Callable[[], Stored],
        not_processed: Callable[[], Stored],
    ) -> Response:
        """The common path of every mutating dialect request: faults, idempotency, latency, delivery."""
        early = self.before_accept(not_processed)
        if early is not None:
            return early

        async def with_latency() -> Stored:
            await self.latency()
            return await compute()

        stored = await self.store.idempotent(dialect, key, fingerprint(request, body), with_latency, conflict)
        return await self.deliver(stored)


def to_response(stored: Stored) -> Response:
    return Response(content=stored.body, status_code=stored.status, headers=stored.headers)
