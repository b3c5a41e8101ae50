"""Circuit breakers, one per processor account, per process.

closed ──(≥ ``failure_threshold`` failures among the last ``window`` calls, at least ``min_calls`` calls)──► open
open ──(``open_seconds`` elapsed)──► half-open: up to ``half_open_probes`` trial calls are let through
half-open ──(a probe succeeds)──► closed        half-open ──(a probe fails)──► open again

A *failure* is an infrastructure fault (processor unreachable, 5xx, timeout). A decline is a healthy answer.
State is per process on purpose: each API process judges the processor by what it sees itself, and an open
circuit only ever causes failover to another processor, never a lost payment.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BreakerConfig", "BreakerRegistry", "CircuitBreaker"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window: int = 20
    min_calls: int = 5
    failure_threshold: float = 0.5  # share of failures in the window that opens the circuit
    open_seconds: float = 10.0
    half_open_probes: int = 1


@dataclass
class CircuitBreaker:
    config: BreakerConfig = field(default_factory=BreakerConfig)
    state: str = "closed"
    opened_at: float = 0.0
    probes_in_flight: int = 0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=20))
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    total_calls: int = 0
    total_failures: int = 0
    clock: Any = time.monotonic

    def __post_init__(self) -> None:
        self.outcomes = deque(maxlen=self.config.window)

    def rejecting(self) -> bool:
        """True while the circuit is open and not yet due for a half-open probe (no state change)."""
        return self.state == "open" and self.clock() - self.opened_at < self.config.open_seconds

    def allow(self) -> bool:
        """May a call go out now? In half-open state this reserves one of the probe slots."""
        if self.state == "open":
            if self.clock() - self.opened_at < self.config.open_seconds:
                return False
            self.state, self.probes_in_flight = "half_open", 0
        if self.state == "half_open":
            if self.probes_in_flight >= self.config.half_open_probes:
                return False
            self.probes_in_flight += 1
        return True

    def record(self, ok: bool, latency_ms: float | None = None) -> None:
        self.total_calls += 1
        self.total_failures += 0 if ok else 1
        self.outcomes.append(ok)
        if latency_ms is not None:
            self.latencies_ms.append(latency_ms)
        if self.state == "half_open":
            self.probes_in_flight = max(0, self.probes_in_flight - 1)
            if ok:
                self.state = "closed"
                self.outcomes.clear()
            else:
                self._open()
            return
        if self.state == "closed" and len(self.outcomes) >= self.config.min_calls:
            failures = sum(1 for o in self.outcomes if not o)
            if failures / len(self.outcomes) >= self.config.failure_threshold:
                self._open()

    def _open(self) -> None:
        self.state = "open"
        self.opened_at = self.clock()
        self.probes_in_flight = 0

    def snapshot(self) -> dict[str, Any]:
        n = len(self.outcomes)
        lat = sorted(self.latencies_ms)
        return {
            "circuit": self.state,
            "recent_calls": n,
            "recent_success_rate": round(sum(self.outcomes) / n, 4) if n else None,
            "latency_ms_p50": round(lat[len(lat) // 2], 2) if lat else None,
            "latency_ms_p95": round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 2) if lat else None,
            "total_calls": self.total_calls,
            "total_failures": self.total_failures,
        }


class BreakerRegistry:
    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._breakers: dict[str, CircuitBreaker] = {}

    def reset(self) -> None:
        """Forget every account's state: each circuit starts closed, with no calls seen."""
        self._breakers.clear()

    def get(self, account_id: str) -> CircuitBreaker:
        breaker = self._breakers.get(account_id)
        if breaker is None:
            breaker = self._breakers[account_id] = CircuitBreaker(self.config)
        return breaker
