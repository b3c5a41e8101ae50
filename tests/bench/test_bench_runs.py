"""Short benchmark runs of every scenario against a real stack (simulator, API and worker as separate processes),
on SQLite and PostgreSQL: every payment ends final, authorized exactly once, and the ledger verifies. No timing
assertions: the figures are only reported."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx2
import pytest

from paygate.bench.run import run_bench
from paygate.bench.stack import Stack
from paygate.bench.verify import verify_run
from tests.bench.conftest import CONTRACT_KEYS, short

pytestmark = pytest.mark.db


@pytest.mark.parametrize("scenario", ["card", "two-step", "manual-capture", "mixed"])
def test_every_payment_of_a_scenario_is_final_and_authorized_exactly_once(bench_stack: Stack, scenario: str) -> None:
    count = 40 if scenario == "mixed" else 20
    result = run_bench(short(scenario=scenario, count=count), stack=bench_stack)
    doc = result.to_json()
    assert doc["errors"] == 0, doc["errors_by_type"]
    assert doc["lost"] == 0, doc["problems"]
    assert doc["duplicated"] == 0, doc["problems"]
    assert doc["ledger_ok"] is True
    assert doc["processor_checked"] is True
    assert doc["payments_completed"] == doc["payments_total"] == count
    assert doc["measured_payments"] == count
    assert doc.keys() >= CONTRACT_KEYS
    # the gateway reports its processor wait, so gateway-added latency is measured, never above the total
    assert doc["gateway_added_p99_ms"] is not None and doc["gateway_added_p99_ms"] <= doc["max_ms"]
    # the gateway's own processes were measured: CPU per payment and the API process's memory at start and end
    assert doc["cpu_seconds_per_payment"] > 0
    assert len(doc["api_rss_bytes_start"]) == len(doc["api_rss_bytes_end"]) == 1
    # and so were the load generator and the whole machine, which spent at least what the API did (CPU is read in
    # clock ticks: 20 payments may cost the load generator less than one, so only the floor test asks it be > 0)
    assert doc["loadgen_cpu_seconds_per_payment"] is not None and doc["loadgen_cpu_seconds_per_payment"] >= 0
    assert doc["machine_cpu_seconds_per_payment"] >= doc["cpu_seconds_per_payment"]
    assert 0 < doc["machine_busy_share"] <= 1
    if scenario == "mixed":
        assert set(doc["measured_by_kind"]) <= {"card", "decline", "two-step", "manual-capture"}
        assert doc["measured_by_kind"].get("card", 0) > 0


def test_a_duration_run_measures_only_its_window_and_checks_warmup_payments_too(bench_stack: Stack) -> None:
    result = run_bench(short(duration=1.0, warmup=0.5, concurrency=4), stack=bench_stack)
    doc = result.to_json()
    assert doc["window_seconds"] == 1.0
    assert 0 < doc["measured_payments"] <= doc["payments_total"] == doc["payments_completed"]
    assert doc["lost"] == 0 and doc["duplicated"] == 0 and doc["errors"] == 0


def test_the_floor_runs_in_the_same_invocation_and_paygate_is_reported_as_its_ratio(bench_stack: Stack) -> None:
    # enough payments that each process's CPU, read in clock ticks, is measurable on both sides
    result = run_bench(short(count=300, floor=True), stack=bench_stack)
    doc = result.to_json()
    assert doc["lost"] == 0 and doc["duplicated"] == 0 and doc["errors"] == 0
    assert doc["floor"]["errors"] == 0
    assert doc["floor_payments_per_second"] > 0
    assert doc["ratio_to_floor"] == pytest.approx(doc["payments_per_second"] / doc["floor_payments_per_second"], 0.01)
    # the floor wrote as many rows per payment as paygate did in the same run (a card payment writes several)
    assert doc["rows_per_payment"] > 1
    # both sides' CPU is measured by the same roles, the local PostgreSQL server's included
    floor_cpu = doc["floor"]["cpu_seconds_per_payment"]
    assert floor_cpu["api"] > 0 and floor_cpu["loadgen"] > 0
    assert floor_cpu["machine"] >= floor_cpu["api"]
    if doc["run"]["database"] == "postgresql":
        assert doc["database_cpu_seconds_per_payment"] > 0
        assert doc["floor"]["cpu_seconds_per_payment"]["database"] > 0
    else:  # SQLite's work runs inside the API process: no server to measure
        assert doc["database_cpu_seconds_per_payment"] is None


def _pay(stack: Stack, ref: str, idempotency_key: str) -> str:
    r = httpx2.post(
        f"{stack.url}/v1/payment_intents",
        auth=(stack.secret_key, ""),
        headers={"Idempotency-Key": idempotency_key},
        data={
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "metadata[bench_ref]": ref,
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_the_check_reports_a_payment_charged_twice_and_one_that_is_missing(bench_stack: Stack, tmp_path: Path) -> None:
    run_id = secrets.token_hex(3)
    since = int(time.time()) - 1
    charged_twice = f"{run_id}-0-0-1"
    first = _pay(bench_stack, charged_twice, "k1-" + run_id)
    _pay(bench_stack, charged_twice, "k2-" + run_id)  # a retry without the same idempotency key: a second charge
    payments = tmp_path / "payments.txt"
    payments.write_text(
        f"{charged_twice} card {first} 1500 1\n"
        f"{run_id}-0-0-2 card pi_doesnotexist000000000000 1500 1\n"  # the bench got an id the gateway never shows
    )
    v = verify_run(
        [payments],
        url=bench_stack.url,
        secret_key=bench_stack.secret_key,
        since=since,
        run_id=run_id,
        simulator_url=bench_stack.simulator_url,
        database_url=bench_stack.database_url,
    )
    # the gateway lists two intents for one reference, and the processor saw two authorizations for it
    assert v.duplicated == 2
    # the unknown intent is missing at the gateway, and its reference was never authorized at the processor
    assert v.lost == 2
    assert v.ledger_ok is True
