"""After a full flow with known test PANs and CVCs, no PAN or CVC appears anywhere but the vault's ciphertext:
not in any table (every text/blob column), not in the SQLite file or its WAL, not in logs, events or HTTP
responses (last4 only)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import column, create_engine, inspect, select, table
from sqlalchemy.engine import make_url

from paygate.db.engine import sync_url
from tests.conftest import Merchant
from tests.integration.vault._support import card_form, enable_raw_card_access, publishable, tokenize
from tests.support.databases import create_postgres, create_sqlite, drop_postgres
from tests.support.server import RunningServer

PANS = ["4242424242424242", "5555555555554444", "378282246310005", "4000002500000003", "4000000000000002"]
CVCS = ["739", "518", "2957", "864", "391"]  # by position; amex gets 4 digits


def _cvc_pattern(cvc: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9A-Za-z_\-]){cvc}(?![0-9A-Za-z_\-])")


def _leaks(text: str) -> list[str]:
    found = [f"PAN {p[-4:]}" for p in PANS if p in text]
    found += [f"CVC {c}" for c in CVCS if _cvc_pattern(c).search(text)]
    return found


@pytest.fixture
def fresh(backend: str, tmp_path: Path) -> Iterator[tuple[str, Merchant]]:
    """A database of this test's own: the raw-file scan must not match digits other tests wrote (an amount of
    739 in an event would look like the CVC 739)."""
    url, name = (create_sqlite(tmp_path), None) if backend == "sqlite" else create_postgres()
    server = RunningServer(url, backend).start()
    merchant = Merchant(server)
    yield url, merchant
    merchant.http.close()
    server.stop()
    if name:
        drop_postgres(name)


def test_full_flow_leaves_no_pan_or_cvc_anywhere(
    fresh: tuple[str, Merchant], rendered_logs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    database_url, merchant = fresh
    caplog.set_level(logging.DEBUG)
    enable_raw_card_access(merchant.server, merchant.id)
    bodies: list[str] = []

    def keep(resp: Any) -> Any:
        bodies.append(resp.text)
        return resp

    cus = keep(merchant.post("/v1/customers", {"email": "leak@example.com"})).json()["id"]
    with publishable(merchant) as pk:
        pms = []
        for pan, cvc in zip(PANS[:3], CVCS[:3], strict=True):
            pm = tokenize(pk, pan, cvc, **{"billing_details[name]": "Card Holder"})
            bodies.append(str(pm))
            pms.append(pm["id"])
        keep(pk.post("/v1/payment_methods", data=card_form("4242424242424241", CVCS[0])))  # Luhn error
    for pm in pms:
        pi = keep(
            merchant.post(
                "/v1/payment_intents",
                {
                    "amount": 2000,
                    "currency": "usd",
                    "capture_method": "manual",
                    "payment_method": pm,
                    "confirm": "true",
                },
            )
        ).json()
        assert pi["status"] == "requires_capture", pi
        keep(merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 1500}))
        keep(merchant.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 500}))
    inline = keep(
        merchant.post(
            "/v1/payment_intents",
            {
                "amount": 3100,
                "currency": "usd",
                "confirm": "true",
                "customer": cus,
                "setup_future_usage": "off_session",
                **card_form(PANS[3], CVCS[3], prefix="payment_method_data"),
            },
            headers={"Idempotency-Key": "leak-inline"},
        )
    ).json()
    assert inline["status"] == "succeeded"
    declined = keep(
        merchant.post(
            "/v1/payment_intents",
            {
                "amount": 3100,
                "currency": "usd",
                "confirm": "true",
                **card_form(PANS[4], CVCS[4], prefix="payment_method_data"),
            },
        )
    )
    assert declined.status_code == 402
    keep(merchant.post(f"/v1/payment_methods/{pms[0]}/attach", {"customer": cus}))
    keep(merchant.get(f"/v1/customers/{cus}/payment_methods"))
    keep(merchant.get("/v1/payment_methods", params={"customer": cus}))
    events = keep(merchant.get("/v1/events", params={"limit": 100}))
    assert events.status_code == 200 and events.json()["data"]
    structlog.get_logger("paygate.test").info("card echo", card_number=PANS[0], cvc=CVCS[0], note=f"pan {PANS[1]}")

    problems: list[str] = []
    for i, body in enumerate(bodies):
        problems += [f"response {i}: {leak}" for leak in _leaks(body)]
    for line in rendered_logs + [r.getMessage() for r in caplog.records]:
        problems += [f"log: {leak}" for leak in _leaks(line)]
    assert rendered_logs, "the log tap saw nothing"

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            for name in inspect(conn).get_table_names():
                columns = [column(c["name"]) for c in inspect(conn).get_columns(name)]
                for row in conn.execute(select(*columns).select_from(table(name))):
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            text = bytes(value).decode("latin-1")
                        elif isinstance(value, str):
                            text = value
                        else:
                            continue
                        problems += [f"table {name}: {leak}" for leak in _leaks(text)]
    finally:
        engine.dispose()

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{url.database}{suffix}")
            if path.exists():
                raw = path.read_bytes()
                problems += [f"{path.name}: PAN {p[-4:]}" for p in PANS if p.encode() in raw]
                for cvc in CVCS:  # a CVC in a JSON / form / key=value context
                    if re.search(rb'[":=]\s*"?' + cvc.encode() + rb'["&,}\s]', raw):
                        problems.append(f"{path.name}: CVC {cvc}")
    assert problems == []
