"""What a run measured, and the JSON document other tools read.

The JSON contract (``--json FILE``) holds at least: ``payments_per_second``, ``p50_ms``, ``p99_ms``,
``gateway_added_p99_ms``, ``errors`` (count), ``lost``, ``duplicated``, ``ledger_ok``, and with ``--floor`` also
``floor_payments_per_second`` and ``ratio_to_floor``. Every other key is informative and may grow.
"""

from __future__ import annotations

import math
import os
import platform
from array import array
from dataclasses import dataclass, field
from typing import Any

from paygate.bench.options import BenchOptions
from paygate.bench.verify import Verification

__all__ = ["BenchResult", "Phase", "percentile"]


def percentile(sorted_values: array[float] | list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``None`` when empty)."""
    n = len(sorted_values)
    if n == 0:
        return None
    return float(sorted_values[min(n - 1, max(0, math.ceil(q * n) - 1))])


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass
class Phase:
    """One measured load phase (paygate, or the floor)."""

    label: str
    window_seconds: float = 0.0
    # how long CPU was read for: from the window's start until the bench saw it end (a counted run's window ends
    # with its last payment, which the bench notices up to a poll later)
    cpu_window_seconds: float = 0.0
    measured: int = 0
    payments_total: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    gateway_added: array[float] = field(default_factory=lambda: array("d"))
    processor: array[float] = field(default_factory=lambda: array("d"))
    by_kind: dict[str, int] = field(default_factory=dict)
    # role (api, worker, simulator, database, loadgen; "machine": every core, whoever) → CPU seconds in the window
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    rss_start: dict[str, list[int]] = field(default_factory=dict)  # role → RSS per process at window start
    rss_end: dict[str, list[int]] = field(default_factory=dict)
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the window, API RSS sum)

    def finish(self) -> None:
        self.latencies = array("d", sorted(self.latencies))
        self.gateway_added = array("d", sorted(self.gateway_added))
        self.processor = array("d", sorted(self.processor))

    @property
    def throughput(self) -> float:
        return self.measured / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def cpu_per_payment(self, role: str) -> float | None:
        spent = self.cpu_seconds.get(role)
        if spent is None or self.measured == 0:
            return None
        return spent / self.measured

    def busy_share(self) -> float | None:
        """How busy the machine's cores were over the window, from 0 to 1 (``None`` if not measured)."""
        spent = self.cpu_seconds.get("machine")
        cpus = os.cpu_count() or 1
        if spent is None or self.cpu_window_seconds <= 0:
            return None
        # CPU time is read in clock ticks: over a window of a fraction of a second the reading may exceed the
        # cores' capacity by a tick or two, which is not busier than busy
        return round(min(1.0, spent / (self.cpu_window_seconds * cpus)), 3)

    def latency_ms(self, q: float) -> float | None:
        return _ms(percentile(self.latencies, q))

    def added_ms(self, q: float) -> float | None:
        return _ms(percentile(self.gateway_added, q))

    def summary(self) -> dict[str, Any]:
        return {
            "payments_per_second": round(self.throughput, 1),
            "measured_payments": self.measured,
            "window_seconds": round(self.window_seconds, 3),
            "p50_ms": self.latency_ms(0.50),
            "p95_ms": self.latency_ms(0.95),
            "p99_ms": self.latency_ms(0.99),
            "max_ms": self.latency_ms(1.0),
            "errors": self.error_count,
            "errors_by_type": dict(sorted(self.errors.items())),
            "cpu_seconds_per_payment": {
                role: round(spent / self.measured, 6) if self.measured else None
                for role, spent in self.cpu_seconds.items()
            },
            "machine_busy_share": self.busy_share(),
        }


@dataclass
class BenchResult:
    options: BenchOptions
    run_id: str
    database: str  # sqlite | postgresql | unknown
    gateway: Phase
    verification: Verification
    floor: Phase | None = None
    rows_per_payment: float | None = None
    database_bytes_per_payment: int | None = None  # growth of the database's size on disk, per payment
    notes: list[str] = field(default_factory=list)

    @property
    def ratio_to_floor(self) -> float | None:
        if self.floor is None or self.floor.throughput <= 0:
            return None
        return self.gateway.throughput / self.floor.throughput

    def to_json(self) -> dict[str, Any]:
        g, v, o = self.gateway, self.verification, self.options
        doc: dict[str, Any] = {
            "payments_per_second": round(g.throughput, 1),
            "p50_ms": g.latency_ms(0.50),
            "p95_ms": g.latency_ms(0.95),
            "p99_ms": g.latency_ms(0.99),
            "max_ms": g.latency_ms(1.0),
            "gateway_added_p50_ms": g.added_ms(0.50),
            "gateway_added_p95_ms": g.added_ms(0.95),
            "gateway_added_p99_ms": g.added_ms(0.99),
            "processor_p50_ms": _ms(percentile(g.processor, 0.50)),
            "gateway_added_method": "Server-Timing processor;dur (time inside connector calls)"
            if len(g.gateway_added)
            else None,
            "errors": g.error_count,
            "errors_by_type": dict(sorted(g.errors.items())),
            "lost": v.lost,
            "duplicated": v.duplicated,
            "ledger_ok": v.ledger_ok,
            "processor_checked": v.processor_checked,
            "orphans": v.orphans,
            "problems": v.problems,
            "payments_total": v.payments,
            "payments_completed": v.completed,
            "measured_payments": g.measured,
            "measured_by_kind": g.by_kind,
            "window_seconds": round(g.window_seconds, 3),
            "cpu_seconds_per_payment": g.cpu_per_payment("api"),
            "worker_cpu_seconds_per_payment": g.cpu_per_payment("worker"),
            "simulator_cpu_seconds_per_payment": g.cpu_per_payment("simulator"),
            "database_cpu_seconds_per_payment": g.cpu_per_payment("database"),
            "loadgen_cpu_seconds_per_payment": g.cpu_per_payment("loadgen"),
            "machine_cpu_seconds_per_payment": g.cpu_per_payment("machine"),
            "machine_busy_share": g.busy_share(),
            "api_rss_bytes_start": g.rss_start.get("api"),
            "api_rss_bytes_end": g.rss_end.get("api"),
            "api_rss_samples": [list(sample) for sample in g.rss_samples],
            "rss_bytes": {role: {"start": g.rss_start.get(role), "end": g.rss_end.get(role)} for role in g.rss_end},
            "rows_per_payment": self.rows_per_payment,
            "database_bytes_per_payment": self.database_bytes_per_payment,
            "run": {
                "run_id": self.run_id,
                "scenario": o.scenario,
                "concurrency": o.concurrency,
                "duration_seconds": o.duration,
                "count": o.count,
                "warmup_seconds": o.warmup,
                "processor_latency_ms": o.latency_ms,
                "processor": o.processor,
                "api_processes": o.api_processes,
                "loadgen_processes": o.generator_count(),
                "database": self.database,
                "own_stack": o.url is None,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "notes": self.notes,
        }
        if self.floor is not None:
            ratio = self.ratio_to_floor
            doc["floor_payments_per_second"] = round(self.floor.throughput, 1)
            doc["ratio_to_floor"] = None if ratio is None else round(ratio, 3)
            doc["floor"] = self.floor.summary()
        return doc
