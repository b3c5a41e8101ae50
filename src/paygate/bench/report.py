"""What people see: a live progress bar while a phase runs (stderr) and the final table (stdout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from paygate.bench.results import BenchResult

__all__ = ["PhaseProgress", "print_table", "write_json"]


class PhaseProgress:
    """A progress bar for one phase; ``update`` is called a few times a second with the counters."""

    def __init__(self, label: str, total: float, *, by_count: bool, quiet: bool) -> None:
        self.by_count = by_count
        self.quiet = quiet
        self.progress: Progress | None = None
        if quiet:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[stage]:>8}"),
            TextColumn("{task.fields[rate]:>10} payments/s"),
            TextColumn("{task.fields[done]:>9} done"),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task(label, total=total, stage="warm-up", rate="-", done=0, errors=0)
        self.progress.start()

    def update(self, *, completed: float, stage: str, rate: float | None, done: int, errors: int) -> None:
        if self.progress is None:
            return
        self.progress.update(
            self.task,
            completed=completed,
            stage=stage,
            rate=f"{rate:,.0f}" if rate is not None else "-",
            done=f"{done:,}",
            errors=errors,
        )

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _fmt(value: float | None, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


_CPU_ROLES = (
    ("api", "API"),
    ("worker", "worker"),
    ("simulator", "simulator"),
    ("database", "database server"),
    ("loadgen", "load generator"),
    ("machine", "whole machine"),
)


def _pct(share: float | None) -> float | None:
    return None if share is None else share * 100


def _mib(values: list[int] | None) -> str:
    if not values:
        return "-"
    return " / ".join(f"{v / 2**20:,.0f}" for v in values) + " MiB"


def print_table(result: BenchResult, console: Console | None = None) -> None:
    console = console or Console()
    doc = result.to_json()
    run = doc["run"]
    g = result.gateway
    table = Table(
        title=f"paygate bench — {run['scenario']}, {run['concurrency']} in flight, {run['database']}, "
        f"{run['api_processes']} API process(es), processor {run['processor']} +{run['processor_latency_ms']} ms",
        show_header=True,
        header_style="bold",
    )
    table.add_column("")
    table.add_column("paygate", justify="right")
    if result.floor is not None:
        table.add_column("floor", justify="right")
    f = result.floor

    def row(name: str, mine: str, floor: str = "") -> None:
        table.add_row(name, mine, *([floor] if f is not None else []))

    row("payments/s", _fmt(g.throughput), _fmt(f.throughput) if f else "")
    row(
        "measured payments / window",
        f"{g.measured:,} / {g.window_seconds:.1f} s",
        f"{f.measured:,} / {f.window_seconds:.1f} s" if f else "",
    )
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)):
        row(f"latency {name}", _fmt(g.latency_ms(q), 1, " ms"), _fmt(f.latency_ms(q), 1, " ms") if f else "")
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        row(f"gateway-added {name}", _fmt(g.added_ms(q), 1, " ms"))
    for role, name in _CPU_ROLES:
        mine, floor = g.cpu_per_payment(role), f.cpu_per_payment(role) if f else None
        if mine is not None or floor is not None:
            row(f"CPU s / payment ({name})", _fmt(mine, 5), _fmt(floor, 5) if f else "")
    busy = g.busy_share()
    if busy is not None:
        row("machine busy", _fmt(_pct(busy), 0, " %"), _fmt(_pct(f.busy_share()), 0, " %") if f else "")
    row("API RSS start → end", f"{_mib(g.rss_start.get('api'))} → {_mib(g.rss_end.get('api'))}")
    errors = ", ".join(f"{k}: {n}" for k, n in sorted(g.errors.items())) or "0"
    row("errors", errors, str(f.error_count) if f else "")
    v = result.verification
    row("payments checked", f"{v.completed:,} of {v.payments:,}")
    row("lost", str(v.lost))
    row("duplicated", str(v.duplicated) if v.processor_checked else f"{v.duplicated} (gateway side only)")
    row("ledger verify", {True: "OK", False: "FAILED", None: "not checked"}[v.ledger_ok])
    if result.ratio_to_floor is not None:
        row("ratio to floor", f"{result.ratio_to_floor:.1%}")
    console.print(table)
    for text in v.problems:
        console.print(f"[red]problem:[/red] {text}")
    for text in result.notes:
        console.print(f"[dim]note: {text}[/dim]")


def write_json(result: BenchResult, path: Path) -> dict[str, Any]:
    doc = result.to_json()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc
