"""What one ``paygate bench`` run does, validated before anything starts.

:class:`BenchOptions` is the whole input of a run; :meth:`BenchOptions.validate` raises :class:`OptionError`
(naming the offending option) for anything that cannot work, so a bad invocation fails in milliseconds instead of
after starting processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["PROCESSORS", "SCENARIOS", "BenchOptions", "OptionError"]

SCENARIOS = ("card", "two-step", "manual-capture", "mixed")
PROCESSORS = ("simulator", "sandbox")


class OptionError(ValueError):
    """An option value that cannot work; ``option`` is its command-line name."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


@dataclass(slots=True)
class BenchOptions:
    """Every knob of a run. ``duration`` and ``count`` are exclusive; with neither, ``duration`` is 10 s."""

    scenario: str = "card"
    concurrency: int = 16  # requests in flight (one keep-alive connection per virtual merchant client)
    duration: float | None = None  # seconds of measurement after the warm-up
    count: int | None = None  # or: this many payments after the warm-up
    warmup: float = 2.0  # seconds of load before measuring (payments made then are still verified)
    latency_ms: int = 0  # processor latency injected by the simulator
    url: str | None = None  # an already running gateway; otherwise the bench starts its own stack
    key: str | None = None  # secret key for --url
    simulator_url: str | None = None  # with --url: the simulator that gateway uses (processor-side checks)
    database_url: str | None = None  # own stack: this database instead of a fresh SQLite file; with --url: ledger
    api_processes: int = 1
    loadgen_processes: int | None = None  # default: one per 512 in flight (at least one)
    processor: str = "simulator"  # or "sandbox": the gateway's in-process processor (no latency injection)
    floor: bool = False
    json_path: Path | None = None
    sqlite_synchronous: str | None = None  # default: paygate's default (FULL)
    seed: int | None = None
    quiet: bool = False  # no progress bar (tests, CI logs)
    keep: bool = False  # keep the run directory (process logs, payment files); kept anyway when a check fails
    timeout: float = 30.0  # per request

    @property
    def measure_seconds(self) -> float:
        return self.duration if self.duration is not None else (0.0 if self.count is not None else 10.0)

    def generator_count(self) -> int:
        if self.loadgen_processes is not None:
            return self.loadgen_processes
        return max(1, min(8, math.ceil(self.concurrency / 512)))

    def validate(self) -> BenchOptions:
        """Check every option; returns ``self`` for chaining. Raises :class:`OptionError`."""
        if self.scenario not in SCENARIOS:
            raise OptionError("--scenario", f"must be one of {', '.join(SCENARIOS)}, not {self.scenario!r}")
        if not 1 <= self.concurrency <= 10_000:
            raise OptionError("--concurrency", "must be between 1 and 10000")
        if self.duration is not None and self.count is not None:
            raise OptionError("--duration", "give either --duration or --count, not both")
        if self.duration is not None and not 0 < self.duration <= 86_400:
            raise OptionError("--duration", "must be a positive number of seconds (at most one day)")
        if self.count is not None and self.count < 1:
            raise OptionError("--count", "must be at least 1")
        if not 0 <= self.warmup <= 3600:
            raise OptionError("--warmup", "must be between 0 and 3600 seconds")
        if not 0 <= self.latency_ms <= 60_000:
            raise OptionError("--latency-ms", "must be between 0 and 60000")
        if not 1 <= self.api_processes <= 64:
            raise OptionError("--api-processes", "must be between 1 and 64")
        if self.loadgen_processes is not None and not 1 <= self.loadgen_processes <= 64:
            raise OptionError("--loadgen-processes", "must be between 1 and 64")
        if self.loadgen_processes is not None and self.loadgen_processes > self.concurrency:
            raise OptionError("--loadgen-processes", "cannot exceed --concurrency")
        if self.processor not in PROCESSORS:
            raise OptionError("--processor", f"must be one of {', '.join(PROCESSORS)}")
        if self.processor == "sandbox" and self.latency_ms:
            raise OptionError("--latency-ms", "latency is injected by the simulator; not available with sandbox")
        if not 0 < self.timeout <= 600:
            raise OptionError("--timeout", "must be between 0 and 600 seconds")
        if self.sqlite_synchronous is not None and self.sqlite_synchronous.upper() not in (
            "OFF",
            "NORMAL",
            "FULL",
            "EXTRA",
        ):
            raise OptionError("--sqlite-synchronous", "must be OFF, NORMAL, FULL or EXTRA")
        if self.database_url is not None and not self.database_url.startswith(("sqlite", "postgresql")):
            raise OptionError("--database-url", "must be a sqlite:/// or postgresql:// URL")
        if self.url is None:
            if self.key is not None:
                raise OptionError("--key", "only with --url (the bench creates its own merchant otherwise)")
            if self.simulator_url is not None:
                raise OptionError("--simulator-url", "only with --url (the bench starts its own simulator otherwise)")
        else:
            parts = urlsplit(self.url)
            if parts.scheme != "http" or not parts.hostname:
                raise OptionError("--url", "must be an http:// URL (the load generator speaks plain HTTP/1.1)")
            if not self.key:
                raise OptionError("--key", "a secret key (sk_test_…) is required with --url")
            if self.floor and self.database_url is None:
                raise OptionError("--floor", "with --url the floor needs --database-url (the same database)")
            if self.processor != "simulator":
                raise OptionError("--processor", "chooses the processor of the bench's own stack only")
            if self.latency_ms and not self.simulator_url:
                raise OptionError("--latency-ms", "with --url, give --simulator-url (the simulator to configure)")
        return self
