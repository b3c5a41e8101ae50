"""The load generator: separate OS processes (so their CPU is never counted as the gateway's), each running
``users`` virtual merchant clients on one uvloop event loop. Each virtual client owns one keep-alive connection and
runs one payment at a time, so ``concurrency`` = number of requests in flight.

Protocol with the parent (:func:`start_generators`, :class:`GeneratorHandle`), over a pipe:

1. the child imports, opens its connections and sends ``"ready"``;
2. the parent sends a :class:`Schedule` (absolute ``time.monotonic()`` instants; Linux's monotonic clock is
   system-wide, so one schedule serves every process);
3. the child runs until ``stop_at`` (duration mode) or until its share of ``count`` measured payments is done,
   lets in-flight payments finish, and sends a :class:`GeneratorResult`.

A payment is *measured* when (duration mode) it completed inside ``[warmup_end, stop_at]``, or (count mode) it was
started after ``warmup_end`` with one of the process's tickets. Warm-up payments are not measured but are still
written to the payments file, so the correctness check covers every payment the run made.

Progress is published lock-free in a shared array with :data:`SLOTS` slots per generator ``i``: ``SLOTS*i``
counts its measured payments, ``SLOTS*i+1`` all finished payments (warm-up and errors included), ``SLOTS*i+2``
payments that ended in an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import random
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from paygate.bench.httpclient import Connection
from paygate.bench.scenarios import Api, pick_kind, run_payment

__all__ = ["SLOTS", "GeneratorHandle", "GeneratorResult", "GeneratorSpec", "Schedule", "start_generators"]

SLOTS = 3


@dataclass(frozen=True, slots=True)
class GeneratorSpec:
    index: int
    host: str
    port: int
    base_path: str
    secret_key: str
    scenario: str
    users: int
    run_id: str
    seed: int
    timeout: float
    quota: int | None  # measured payments this process makes (count mode)
    payments_file: str  # one line per payment: ref kind intent_id amount error


@dataclass(frozen=True, slots=True)
class Schedule:
    start: float
    warmup_end: float
    stop_at: float | None  # duration mode


@dataclass(slots=True)
class GeneratorResult:
    index: int
    measured: int = 0
    latencies: bytes = b""  # array("d") of measured payments' latencies, seconds
    gateway_added: bytes = b""  # array("d"): latency minus Server-Timing processor time, where reported
    processor: bytes = b""  # array("d"): Server-Timing processor time of measured payments, where reported
    first_measured_start: float | None = None
    last_measured_end: float | None = None
    payments: int = 0  # all payments, warm-up included
    errors: dict[str, int] = field(default_factory=dict)  # all errors by type, warm-up included
    measured_by_kind: dict[str, int] = field(default_factory=dict)
    failure: str | None = None  # the generator itself failed (not a payment)


class _State:
    def __init__(self, spec: GeneratorSpec, schedule: Schedule, progress: Any) -> None:
        self.spec = spec
        self.schedule = schedule
        self.progress = progress
        self.tickets = spec.quota
        self.latencies = array("d")
        self.gateway_added = array("d")
        self.processor = array("d")
        self.errors: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.payments = 0
        self.first_start: float | None = None
        self.last_end: float | None = None


async def _user(state: _State, u: int, conn: Connection, out: TextIO) -> None:
    spec, sched = state.spec, state.schedule
    api = Api(conn, spec.secret_key, spec.base_path)
    rng = random.Random(spec.seed * 1_000_003 + spec.index * 10_007 + u)
    slot_measured, slot_all, slot_errors = SLOTS * spec.index, SLOTS * spec.index + 1, SLOTS * spec.index + 2
    n = 0
    while True:
        started = time.monotonic()
        if sched.stop_at is not None and started >= sched.stop_at:
            return
        ticket = False
        # (timers may wake a little before ``start``: without a warm-up, every payment is in the window)
        if state.tickets is not None and (started >= sched.warmup_end or sched.warmup_end <= sched.start):
            if state.tickets <= 0:
                return
            state.tickets -= 1
            ticket = True
        n += 1
        ref = f"{spec.run_id}-{spec.index}-{u}-{n}"
        kind = pick_kind(spec.scenario, rng)
        amount = rng.randrange(500, 50_000)
        outcome = await run_payment(api, kind, ref, amount)
        ended = time.monotonic()
        state.payments += 1
        out.write(f"{ref} {kind} {outcome.intent_id or '-'} {amount} {outcome.error is None:d}\n")
        if outcome.error is not None:
            state.errors[outcome.error] += 1
            state.progress[slot_errors] += 1
        measured = ticket if state.tickets is not None else sched.warmup_end <= ended <= (sched.stop_at or ended)
        if measured and outcome.error is None:
            elapsed = ended - started
            state.latencies.append(elapsed)
            state.by_kind[kind] += 1
            if outcome.processor_s is not None:
                state.processor.append(outcome.processor_s)
                state.gateway_added.append(max(0.0, elapsed - outcome.processor_s))
            if state.first_start is None or started < state.first_start:
                state.first_start = started
            if state.last_end is None or ended > state.last_end:
                state.last_end = ended
            state.progress[slot_measured] += 1
        elif measured and state.last_end is not None and ended > state.last_end:
            state.last_end = ended
        state.progress[slot_all] += 1


async def _connect_all(spec: GeneratorSpec) -> list[Connection]:
    conns = [Connection(spec.host, spec.port, timeout=spec.timeout) for _ in range(spec.users)]
    for conn in conns:  # open them now so the measured window does not pay for TCP handshakes
        with contextlib.suppress(OSError, TimeoutError):
            await conn.request(b"GET", b"/healthz")
    return conns


async def _run(
    spec: GeneratorSpec, pipe: multiprocessing.connection.Connection, progress: Any, out: TextIO
) -> GeneratorResult:
    conns = await _connect_all(spec)
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    schedule: Schedule = await loop.run_in_executor(None, pipe.recv)
    delay = schedule.start - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    state = _State(spec, schedule, progress)
    await asyncio.gather(*(_user(state, u, conn, out) for u, conn in enumerate(conns)))
    for conn in conns:
        conn.close()
    return GeneratorResult(
        index=spec.index,
        measured=len(state.latencies),
        latencies=state.latencies.tobytes(),
        gateway_added=state.gateway_added.tobytes(),
        processor=state.processor.tobytes(),
        first_measured_start=state.first_start,
        last_measured_end=state.last_end,
        payments=state.payments,
        errors=dict(state.errors),
        measured_by_kind=dict(state.by_kind),
    )


def _main(spec: GeneratorSpec, pipe: multiprocessing.connection.Connection, progress: Any) -> None:
    """Entry point of a generator process."""
    import uvloop

    try:
        with Path(spec.payments_file).open("w", buffering=1 << 16) as out:
            result = uvloop.run(_run(spec, pipe, progress, out))
    except BaseException as exc:  # report, never hang the parent
        pipe.send(GeneratorResult(index=spec.index, failure=f"{type(exc).__name__}: {exc}"))
        raise
    pipe.send(result)


class GeneratorHandle:
    """The parent's end of one generator process."""

    def __init__(self, spec: GeneratorSpec, progress: Any) -> None:
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited loops, threads or sockets
        self.spec = spec
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_main, args=(spec, child, progress), daemon=True, name=f"loadgen-{spec.index}"
        )
        self.process.start()
        child.close()

    def _receive(self, timeout: float, what: str) -> object:
        try:
            if not self.pipe.poll(timeout):
                raise RuntimeError(f"load generator {self.spec.index} did not {what} within {timeout:.0f} s")
            return self.pipe.recv()
        except (EOFError, OSError) as exc:
            code = self.process.exitcode
            raise RuntimeError(f"load generator {self.spec.index} exited (code {code}) before it could {what}") from exc

    def wait_ready(self, timeout: float) -> None:
        message = self._receive(timeout, "start")
        if isinstance(message, GeneratorResult):
            raise RuntimeError(f"load generator {self.spec.index} failed: {message.failure}")

    def start(self, schedule: Schedule) -> None:
        self.pipe.send(schedule)

    def result(self, timeout: float) -> GeneratorResult:
        message = self._receive(timeout, "finish")
        if not isinstance(message, GeneratorResult):
            raise RuntimeError(f"load generator {self.spec.index} sent {type(message).__name__}, not its result")
        self.process.join(10)
        return message

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


def start_generators(specs: list[GeneratorSpec]) -> tuple[list[GeneratorHandle], Any]:
    """Spawn one process per spec; returns the handles and the shared progress array."""
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Array("q", SLOTS * len(specs), lock=False)
    return [GeneratorHandle(spec, progress) for spec in specs], progress
