"""The worker runner: loops :class:`Job` s with idle backoff and stops gracefully.

The Job contract (every background task of paygate follows it):

* ``name`` — a short stable identifier used in logs (``"webhook_deliveries"``).
* ``async def run_once(gw) -> int`` — do one bounded round of work and return how much was done (rows relayed,
  deliveries attempted, …). ``0`` means "nothing due": the runner then sleeps, doubling the pause from
  ``idle_min`` to ``idle_max``. A round must be short (bounded by a batch size) so shutdown stays prompt.
* ``batch_size`` (optional) — the most one round takes. A full batch runs the job again at once (a backlog is
  drained at full speed); a partial one means the job has caught up, and the next round comes after
  ``idle_min``, so that it takes what arrived meanwhile as one batch instead of polling again for a handful of
  rows (under load each round's fixed cost — two transactions — is then shared by many rows; the price is at
  most ``idle_min`` of added delay). A job without ``batch_size`` runs again at once after any positive result.
* Jobs own their transactions (they are entry points, ARCHITECTURE.md rule 2) and claim shared rows through
  :mod:`paygate.worker.claims`, so any number of workers may run the same jobs against PostgreSQL without doing
  anything twice. A job holds no state between rounds that matters for correctness: the database is the queue.
* Cancellation: on shutdown the runner lets in-flight rounds finish for ``grace_seconds``, then cancels them.
  A cancelled round must hand its claimed rows back (``claims.release`` in a ``finally``/``except
  CancelledError``) or, at worst, leave them to lease expiry; it must never leave a half-recorded result.
* A job may define ``async def close()``; the runner awaits it once after the job's loop ended.
* An exception escaping ``run_once`` is logged and treated as idle (backoff); the job keeps running.

:meth:`Worker.run` runs until :meth:`Worker.stop` (SIGTERM/SIGINT call it when ``install_signals`` is used).
``paygate worker`` runs the default jobs from :func:`paygate.worker.jobs.default_jobs`; ``paygate demo`` runs
the same runner as a task on the API's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["Job", "Worker"]

log = structlog.get_logger("paygate.worker")


class Job(Protocol):
    """One kind of background work; see the module docstring for the contract."""

    name: str

    async def run_once(self, gw: Gateway) -> int: ...


class Worker:
    """Runs each job in its own loop on the current event loop until stopped."""

    def __init__(
        self,
        gw: Gateway,
        jobs: Sequence[Job],
        *,
        idle_min: float = 0.05,
        idle_max: float = 1.0,
        grace_seconds: float = 20.0,
    ) -> None:
        self.gw = gw
        self.jobs = list(jobs)
        self.idle_min = idle_min
        self.idle_max = idle_max
        self.grace_seconds = grace_seconds
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask every job loop to finish its current round and exit."""
        self._stop.set()

    def install_signals(self) -> None:
        """Stop gracefully on SIGTERM and SIGINT (POSIX event loops)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)

    async def _loop(self, job: Job) -> None:
        pause = self.idle_min
        while not self._stop.is_set():
            try:
                done = await job.run_once(self.gw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("job_failed", job=job.name, error_type=type(exc).__name__, error=str(exc)[:300], exc_info=exc)
                done = 0
            if done > 0:
                pause = self.idle_min
                full = getattr(job, "batch_size", None)
                if full is None or done >= full:
                    continue
                await self._pause(self.idle_min)  # caught up: let the next batch gather
                continue
            await self._pause(pause)
            pause = min(pause * 2, self.idle_max)

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if :meth:`stop` is called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def run(self) -> None:
        """Run until :meth:`stop`; then give in-flight rounds ``grace_seconds`` before cancelling them."""
        log.info("worker_started", jobs=[j.name for j in self.jobs])
        tasks = [asyncio.create_task(self._loop(j), name=f"job:{j.name}") for j in self.jobs]
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            self._stop.set()
            _, pending = await asyncio.wait(tasks, timeout=self.grace_seconds)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stopper.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(stopper, *tasks, return_exceptions=True)
            for job in self.jobs:  # optional ``async close()``: release clients and broker connections
                close = getattr(job, "close", None)
                if close is not None:
                    await close()
            log.info("worker_stopped")
