"""The correctness check after a run: money must be exactly where the bench's own records say it is.

Inputs are the load generators' payment files (one line per payment: ``ref kind intent_id amount ok``) — every
payment of the run, warm-up included. Checks, each from a source independent of the others:

* **gateway** (its public API, ``GET /v1/payment_intents`` and ``GET /v1/refunds`` filtered to the run's time):
  every payment the bench completed exists, is in the final state its kind must end in
  (:data:`paygate.bench.scenarios.EXPECTED_STATUS`) with the full amount received where it succeeded, and every
  manual-capture payment has exactly one succeeded refund of the expected amount;
* **processor** (the simulator's tally of authorizations per ``metadata[bench_ref]``): every completed payment was
  authorized exactly once, and no reference of the run was authorized more than once;
* **ledger** (:func:`paygate.ledger.service.verify` on the database, what ``paygate ledger verify`` runs).

``lost`` counts completed payments the gateway does not show in their final state, or the processor never saw.
``duplicated`` counts references with more than one authorization at the processor or more than one
PaymentIntent at the gateway. Payments that ended in an error are reported as errors by the load generator; they
are still covered by the duplicate checks.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from paygate.bench.scenarios import EXPECTED_STATUS, refund_amount

__all__ = ["PaymentLine", "Verification", "read_payments", "verify_run"]


@dataclass(frozen=True, slots=True)
class PaymentLine:
    ref: str
    kind: str
    intent_id: str | None
    amount: int
    ok: bool


@dataclass(slots=True)
class Verification:
    payments: int = 0  # every payment the run made (warm-up included)
    completed: int = 0  # ... of which completed without an error
    lost: int = 0
    duplicated: int = 0
    ledger_ok: bool | None = None
    processor_checked: bool = False
    problems: list[str] = field(default_factory=list)  # the first few, for people
    orphans: int = 0  # intents tagged with the run's references the bench never got an answer for

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


def read_payments(files: list[Path]) -> list[PaymentLine]:
    out: list[PaymentLine] = []
    for path in files:
        if not path.exists():
            continue
        with path.open() as fh:
            for line in fh:
                parts = line.split()
                if len(parts) != 5:
                    continue
                ref, kind, intent_id, amount, ok = parts
                out.append(PaymentLine(ref, kind, None if intent_id == "-" else intent_id, int(amount), ok == "1"))
    return out


def _list_all(client: httpx2.Client, path: str, since: int) -> list[dict[str, Any]]:
    """Every object of a list endpoint created at or after ``since`` (newest first, cursor pagination)."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100, "created[gte]": since}
    while True:
        r = client.get(path, params=params)
        r.raise_for_status()
        body = r.json()
        data = body.get("data", [])
        out.extend(data)
        if not body.get("has_more") or not data:
            return out
        params["starting_after"] = data[-1]["id"]


def _check_gateway(
    v: Verification, lines: list[PaymentLine], url: str, secret_key: str, since: int, run_id: str
) -> None:
    with httpx2.Client(base_url=url, auth=(secret_key, ""), timeout=60) as client:
        intents = _list_all(client, "/v1/payment_intents", since)
        refunds = _list_all(client, "/v1/refunds", since) if any(p.kind == "manual-capture" for p in lines) else []
    by_id = {pi["id"]: pi for pi in intents}
    per_ref: Counter[str] = Counter()
    for listed in intents:
        ref = (listed.get("metadata") or {}).get("bench_ref")
        if isinstance(ref, str) and ref.startswith(run_id + "-"):
            per_ref[ref] += 1
    refunds_by_intent: dict[str, list[dict[str, Any]]] = {}
    for refund in refunds:
        refunds_by_intent.setdefault(str(refund.get("payment_intent")), []).append(refund)
    known_refs = {p.ref for p in lines}
    v.orphans = sum(1 for ref in per_ref if ref not in known_refs)
    gateway_dupes = [ref for ref, n in per_ref.items() if n > 1]
    for ref in gateway_dupes[:5]:
        v.problem(f"{per_ref[ref]} PaymentIntents carry bench_ref {ref}")
    v.duplicated += len(gateway_dupes)
    for p in lines:
        if not p.ok:
            continue
        pi: dict[str, Any] | None = by_id.get(p.intent_id or "")
        expected = EXPECTED_STATUS[p.kind]
        if pi is None:
            v.lost += 1
            v.problem(f"{p.ref}: {p.intent_id} is not listed by the gateway")
            continue
        status = pi.get("status")
        received = pi.get("amount_received")
        if status != expected or (expected == "succeeded" and received != p.amount):
            v.lost += 1
            v.problem(f"{p.ref}: {p.intent_id} is {status} with {received} received, expected {expected}")
            continue
        if p.kind == "manual-capture":
            found = refunds_by_intent.get(pi["id"], [])
            wanted = refund_amount(p.amount)
            if len(found) != 1 or found[0].get("amount") != wanted or found[0].get("status") != "succeeded":
                v.lost += 1
                shown = [(r.get("amount"), r.get("status")) for r in found]
                v.problem(f"{p.ref}: refunds {shown} on {pi['id']}, expected one of {wanted} succeeded")


def _check_processor(v: Verification, lines: list[PaymentLine], simulator_url: str, run_id: str) -> None:
    expected = [p.ref for p in lines if p.ok]
    r = httpx2.post(
        f"{simulator_url}/_sim/tally/check", json={"expected": expected, "prefix": run_id + "-"}, timeout=120
    )
    r.raise_for_status()
    tally = r.json()
    v.processor_checked = True
    duplicates: dict[str, int] = tally.get("duplicates", {})
    v.duplicated += len(duplicates)
    for ref, n in list(duplicates.items())[:5]:
        v.problem(f"processor saw {n} authorizations for {ref}")
    missing = int(tally.get("missing_count", 0))
    v.lost += missing
    for ref in tally.get("missing", [])[:5]:
        v.problem(f"processor never saw an authorization for {ref}")


async def _ledger(database_url: str) -> tuple[bool, list[str]]:
    from paygate.db.engine import Database
    from paygate.ledger.service import verify

    db = Database(database_url, pool_size=1)
    try:
        async with db.read() as conn:
            report = await verify(conn)
    finally:
        await db.dispose()
    return report.ok, list(report.problems)


def verify_run(
    files: list[Path],
    *,
    url: str,
    secret_key: str,
    since: int,
    run_id: str,
    simulator_url: str | None,
    database_url: str | None,
    settle_seconds: float = 0.2,
) -> Verification:
    """Run every check that the available sources allow (see the module docstring)."""
    time.sleep(settle_seconds)  # answers are sent after commit, but let the last transactions land everywhere
    lines = read_payments(files)
    v = Verification(payments=len(lines), completed=sum(1 for p in lines if p.ok))
    _check_gateway(v, lines, url, secret_key, since, run_id)
    if simulator_url:
        _check_processor(v, lines, simulator_url, run_id)
    if database_url:
        v.ledger_ok, problems = asyncio.run(_ledger(database_url))
        for text in problems[:5]:
            v.problem(f"ledger: {text}")
    return v
