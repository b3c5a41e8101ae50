"""Fixtures for the benchmark tests: a fresh database per backend and one bench stack (simulator, API and worker
as separate processes) shared by every run of the session, so each short run costs seconds, not a stack start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paygate.bench.options import BenchOptions
from paygate.bench.stack import Stack, start_stack
from tests.support.databases import create_postgres, drop_postgres

# The keys of --json that other tools rely on (the contract).
CONTRACT_KEYS = {
    "payments_per_second",
    "p50_ms",
    "p99_ms",
    "gateway_added_p99_ms",
    "errors",
    "lost",
    "duplicated",
    "ledger_ok",
}


@pytest.fixture(scope="session")
def bench_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for the bench (the bench migrates it itself)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('bench') / 'paygate.db'}"
    else:
        url, name = create_postgres()
        yield url
        drop_postgres(name)


@pytest.fixture(scope="session")
def bench_stack(bench_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("bench-stack")
    stack = start_stack(BenchOptions(database_url=bench_database_url).validate(), run_dir)
    yield stack
    stack.stop()


def short(**options: object) -> BenchOptions:
    """Options for a short run (pass the shared stack to ``run_bench(..., stack=)``)."""
    base: dict[str, object] = {
        "warmup": 0.0,
        "concurrency": 8,
        "quiet": True,
        "seed": 7,
    }
    base.update(options)
    return BenchOptions(**base)  # type: ignore[arg-type]
