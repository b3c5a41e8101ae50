"""``paygate bench`` as the command line runs it against a running gateway: a table, the JSON file, the exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from paygate.bench.stack import Stack

pytestmark = pytest.mark.db

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


def test_the_command_benchmarks_a_running_gateway_and_writes_the_json_contract(
    bench_stack: Stack, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    assert bench_stack.simulator_url is not None and bench_stack.database_url is not None
    args = ["--url", bench_stack.url, "--key", bench_stack.secret_key, "--simulator-url", bench_stack.simulator_url]
    args += ["--database-url", bench_stack.database_url]
    args += ["--count", "20", "--warmup", "0", "--concurrency", "4", "--json", str(out), "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "paygate.cli", "bench", *args], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(out.read_text())
    assert doc.keys() >= CONTRACT_KEYS
    assert doc["errors"] == 0 and doc["lost"] == 0 and doc["duplicated"] == 0 and doc["ledger_ok"] is True
    assert doc["processor_checked"] is True
    assert doc["run"]["own_stack"] is False
    assert "payments/s" in done.stdout and "ledger verify" in done.stdout
