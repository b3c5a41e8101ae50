"""``paygate bench`` as the command line runs it against a running gateway: a table, the JSON file, the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from paygate.bench.stack import Stack
from tests.bench.conftest import CONTRACT_KEYS
from tests.support.databases import postgres_admin_url, selected_backends

pytestmark = pytest.mark.db


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


@pytest.mark.skipif("postgres" not in selected_backends(), reason="a PostgreSQL server to ask")
def test_a_database_that_does_not_exist_is_one_clear_line_and_exit_status_2(tmp_path: Path) -> None:
    missing = make_url(postgres_admin_url()).set(database="paygate_bench_no_such_db").render_as_string(False)
    done = subprocess.run(
        [sys.executable, "-m", "paygate.cli", "bench", "--database-url", missing, "--count", "5", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert 'database "paygate_bench_no_such_db" does not exist' in done.stderr
    assert "Traceback" not in done.stderr and "│" not in done.stderr  # no (rich) traceback
