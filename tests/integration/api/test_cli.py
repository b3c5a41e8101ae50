"""The ``paygate`` command line against a fresh SQLite file: merchants with working keys, ``ledger verify`` that
passes on a balanced ledger and explains a corrupted one, and an idempotent ``db upgrade``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from tests.support.server import free_port

PAYGATE = str(Path(sys.executable).with_name("paygate"))


def _env(db_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env.update(
        PAYGATE_DATABASE_URL=f"sqlite:///{db_file}",
        PAYGATE_LOG_LEVEL="warning",
        PAYGATE_ACCESS_LOG="false",
    )
    return env


def paygate(db_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAYGATE, *args], env=_env(db_file), capture_output=True, text=True, timeout=60, check=False)


def _schema(db_file: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db_file) as conn:
        return sorted(conn.execute("SELECT type, name, coalesce(sql, '') FROM sqlite_master").fetchall())


@dataclass
class Served:
    db_file: Path
    base_url: str
    keys: dict[str, str]
    create_stdout: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A merchant created with the CLI and ``paygate serve`` running on the same SQLite file."""
    db_file = tmp_path_factory.mktemp("cli") / "paygate.db"
    created = paygate(db_file, "merchants", "create", "--name", "CLI Shop", "--json")
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    port = free_port()
    log = (db_file.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [PAYGATE, "serve", "--port", str(port)], env=_env(db_file), stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (db_file.parent / "serve.log").read_text()
            try:
                if httpx2.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, "paygate serve did not become healthy"
            time.sleep(0.1)
        yield Served(db_file, base_url, keys, created.stdout)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_merchants_create_json_prints_exactly_id_and_test_keys(served: Served) -> None:
    lines = served.create_stdout.strip().splitlines()
    assert len(lines) == 1, served.create_stdout
    keys = json.loads(lines[0])
    assert set(keys) == {"id", "secret_key", "publishable_key"}
    assert keys["id"].startswith("acct_")
    assert keys["secret_key"].startswith("sk_test_")
    assert keys["publishable_key"].startswith("pk_test_")


def test_merchants_create_makes_a_distinct_merchant_each_time(served: Served, tmp_path: Path) -> None:
    db = _snapshot(served, tmp_path / "two.db")
    result = paygate(db, "merchants", "create", "--name", "B", "--json")
    assert result.returncode == 0, result.stderr
    second = json.loads(result.stdout)
    assert second["id"] != served.keys["id"]
    assert second["secret_key"] != served.keys["secret_key"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM merchants").fetchone()[0] == 2


def test_cli_created_keys_work_against_a_server_on_the_same_database(served: Served) -> None:
    with httpx2.Client(base_url=served.base_url, auth=(served.keys["secret_key"], ""), timeout=30) as client:
        pi = client.post(
            "/v1/payment_intents",
            data={"amount": "5000", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
        )
        assert pi.status_code == 200, pi.text
        assert pi.json()["status"] == "succeeded"
        refund = client.post("/v1/refunds", data={"payment_intent": pi.json()["id"], "amount": "1500"})
        assert refund.status_code == 200, refund.text
        assert refund.json()["status"] == "succeeded"
    with httpx2.Client(base_url=served.base_url, timeout=30) as anon:
        resp = anon.get("/v1/payment_intents", headers={"Authorization": f"Bearer {served.keys['publishable_key']}"})
        assert resp.status_code == 403


def _balanced_copy(served: Served, dest: Path) -> Path:
    """Pay and partially refund through the API, then snapshot the database (sqlite backup API: WAL-safe)."""
    with httpx2.Client(base_url=served.base_url, auth=(served.keys["secret_key"], ""), timeout=30) as client:
        pi = client.post(
            "/v1/payment_intents",
            data={"amount": "2500", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true"},
        ).json()
        assert pi["status"] == "succeeded", pi
        assert client.post("/v1/refunds", data={"payment_intent": pi["id"], "amount": "500"}).status_code == 200
    return _snapshot(served, dest)


def _snapshot(served: Served, dest: Path) -> Path:
    with sqlite3.connect(served.db_file) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    return dest


def test_ledger_verify_passes_after_payments_and_refunds(served: Served, tmp_path: Path) -> None:
    db = _balanced_copy(served, tmp_path / "balanced.db")
    result = paygate(db, "ledger", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger OK" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_journals").fetchone()[0] >= 2


def test_ledger_verify_fails_and_explains_a_corrupted_posting(served: Served, tmp_path: Path) -> None:
    db = _balanced_copy(served, tmp_path / "corrupt.db")
    with sqlite3.connect(db) as conn:
        journal_id, posting_id = conn.execute(
            "SELECT journal_id, id FROM ledger_postings ORDER BY id DESC LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE ledger_postings SET amount = amount + 1 WHERE id = ?", (posting_id,))
    result = paygate(db, "ledger", "verify")
    assert result.returncode != 0
    assert "ledger OK" not in result.stdout
    assert f"journal {journal_id}" in result.stderr
    assert "not 0" in result.stderr


def test_ledger_verify_catches_a_balanced_journal_that_disagrees_with_the_payment(
    served: Served, tmp_path: Path
) -> None:
    """Both sides of one journal doubled: every journal still sums to zero, but the merchant's balance for the
    payment no longer matches what it received."""
    db = _balanced_copy(served, tmp_path / "doubled.db")
    with sqlite3.connect(db) as conn:
        journal_id, intent_id = conn.execute(
            "SELECT id, payment_intent FROM ledger_journals WHERE kind = 'capture' ORDER BY created DESC LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE ledger_postings SET amount = amount * 2 WHERE journal_id = ?", (journal_id,))
    result = paygate(db, "ledger", "verify")
    assert result.returncode != 0
    assert f"payment_intent {intent_id}" in result.stderr
    assert "not 0" not in result.stderr  # the journals themselves still balance


def test_db_upgrade_is_idempotent_and_a_fresh_ledger_verifies(tmp_path: Path) -> None:
    db = tmp_path / "upgrade.db"
    first = paygate(db, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    schema = _schema(db)
    assert any(name == "payment_intents" for _, name, _ in schema)
    second = paygate(db, "db", "upgrade")
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert "revision" in second.stdout
    assert _schema(db) == schema
    verify = paygate(db, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "ledger OK" in verify.stdout


def test_db_upgrade_keeps_existing_data(served: Served, tmp_path: Path) -> None:
    db = _balanced_copy(served, tmp_path / "keep.db")
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM payment_intents").fetchone()[0]
    assert paygate(db, "db", "upgrade").returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM payment_intents").fetchone()[0] == before > 0
