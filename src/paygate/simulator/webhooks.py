"""Asynchronous, signed, retried webhook delivery with injectable faults.

Contract:

* :meth:`WebhookSender.submit` is synchronous and never blocks or fails the API request that caused the
  state change: it renders the dialect's notifications and hands them to a background worker.
* Events are delivered in submission order by one worker; a delivery that does not get a 2xx answer is retried
  in the background with exponential backoff (``webhook_retry_base_seconds * 2**(n-1)``) up to
  ``webhook_max_attempts`` without holding back later events.
* Faults (per event, from the live config): ``webhook_drop_rate`` never sends it, ``webhook_duplicate_rate``
  sends it twice, ``webhook_reorder_rate`` holds it back until after the next event (or one second),
  ``webhook_delay_ms`` delays every event before its first attempt.
* Every attempt (and every drop) is appended to :attr:`WebhookSender.attempts` for ``GET /_sim/webhooks``;
  with a payment retention limit (``retain_payments``) only the newest ``ATTEMPTS_PER_PAYMENT * retain`` are
  kept, as the store keeps its operations, so a long run with webhooks configured holds bounded memory.
* Timestamped signatures are computed per attempt (a retry carries a fresh timestamp).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from paygate.simulator.config import SimConfig
from paygate.simulator.store import StoreEvent

__all__ = ["ATTEMPTS_PER_PAYMENT", "OutboundEvent", "Renderer", "WebhookSender"]

ATTEMPTS_PER_PAYMENT = 8  # attempts kept per retained payment: a few events each, a retry or two


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    event_id: str
    type: str
    body: bytes
    sign: Callable[[bytes, int], dict[str, str]]  # (body, unix time) → headers for this attempt


class Renderer(Protocol):
    def __call__(self, event: StoreEvent, config: SimConfig) -> list[OutboundEvent]: ...


@dataclass(slots=True)
class _Job:
    event: OutboundEvent
    dialect: str
    url: str
    attempt: int = 0
    duplicate: bool = False
    reordered: bool = False


class WebhookSender:
    def __init__(self, config: Callable[[], SimConfig], renderers: dict[str, Renderer], rng: random.Random) -> None:
        self._config = config
        self._renderers = renderers
        self._rng = rng
        self.attempts: deque[dict[str, Any]] = deque()
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: _Job | None = None
        self._client: httpx2.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle
    def _ensure_started(self) -> asyncio.Queue[_Job]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        return self._queue

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._worker] if self._worker else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._worker = None
        self._queue = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._held = None
        self.attempts.clear()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ submission
    def submit(self, event: StoreEvent) -> None:
        config = self._config()
        dialect = event.txn.dialect
        url = config.webhook_target(dialect)
        renderer = self._renderers.get(dialect)
        if url is None or renderer is None:
            return
        for outbound in renderer(event, config):
            job = _Job(outbound, dialect, url)
            if self._rng.random() < config.webhook_drop_rate:
                self._log(job, outcome="dropped")
                continue
            jobs = [job]
            if self._rng.random() < config.webhook_duplicate_rate:
                jobs.append(_Job(outbound, dialect, url, duplicate=True))
            for one in jobs:
                self._schedule(one, config)

    def _schedule(self, job: _Job, config: SimConfig) -> None:
        if self._held is None and self._rng.random() < config.webhook_reorder_rate:
            job.reordered = True
            self._held = job
            self._spawn(self._release_held(job, 1.0))
            return
        self._enqueue_later(job, config.webhook_delay_ms / 1000)
        held, self._held = self._held, None
        if held is not None:
            self._enqueue_later(held, config.webhook_delay_ms / 1000 + 0.01)

    async def _release_held(self, job: _Job, after: float) -> None:
        await asyncio.sleep(after)
        if self._held is job:
            self._held = None
            self._ensure_started().put_nowait(job)

    def _enqueue_later(self, job: _Job, delay: float) -> None:
        queue = self._ensure_started()
        if delay <= 0:
            queue.put_nowait(job)
            return

        async def later() -> None:
            await asyncio.sleep(delay)
            queue.put_nowait(job)

        self._spawn(later())

    # ------------------------------------------------------------------ delivery
    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            job = await queue.get()
            if not await self._attempt(job):
                self._spawn(self._retry(job))

    async def _retry(self, job: _Job) -> None:
        while True:
            config = self._config()
            if job.attempt >= config.webhook_max_attempts:
                self._log(job, outcome="gave_up")
                return
            await asyncio.sleep(config.webhook_retry_base_seconds * 2 ** (job.attempt - 1))
            if await self._attempt(job):
                return

    async def _attempt(self, job: _Job) -> bool:
        config = self._config()
        if self._client is None:
            self._client = httpx2.AsyncClient()
        job.attempt += 1
        headers = {"content-type": "application/json", "user-agent": "paygate-simulator/1"}
        headers.update(job.event.sign(job.event.body, int(time.time())))
        try:
            response = await self._client.post(
                job.url, content=job.event.body, headers=headers, timeout=config.webhook_timeout_seconds
            )
        except httpx2.HTTPError as exc:
            self._log(job, outcome="failed", error=type(exc).__name__)
            return False
        ok = 200 <= response.status_code < 300
        self._log(job, outcome="delivered" if ok else "failed", status_code=response.status_code)
        return ok

    def _log(self, job: _Job, *, outcome: str, status_code: int | None = None, error: str | None = None) -> None:
        self.attempts.append(
            {
                "event_id": job.event.event_id,
                "type": job.event.type,
                "dialect": job.dialect,
                "url": job.url,
                "attempt": job.attempt,
                "outcome": outcome,
                "status_code": status_code,
                "error": error,
                "duplicate": job.duplicate,
                "reordered": job.reordered,
                "timestamp": time.time(),
            }
        )
        retain = self._config().retain_payments
        if retain is not None:
            while len(self.attempts) > ATTEMPTS_PER_PAYMENT * retain:
                self.attempts.popleft()
