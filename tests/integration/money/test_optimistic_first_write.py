"""Txn 1 of a confirm, capture, cancel or refund — deciding on an existing payment — on both databases.

On PostgreSQL it first reads the payment unlocked and guards its writes by the row versions it read; when a row
changed in between, nothing of it is written and it is decided again on the rows read locked (SQLite's only
path). Either way the decision is made on the payment as it is, and the idempotency key is claimed once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from paygate.db.tables import idempotency_keys, ledger_journals
from paygate.db.tables import payment_intents as pi
from paygate.db.tables import refunds as refunds_table
from paygate.payments import repository as repo
from tests.conftest import Merchant
from tests.integration.money._support import ledger_problems, scalar
from tests.support.databases import selected_backends

pytestmark = pytest.mark.db

CARD = {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
postgres_only = pytest.mark.parametrize("backend", [b for b in selected_backends() if b == "postgres"], indirect=True)

Meanwhile = Callable[[str], Awaitable[None]]


def _spy_reads(monkeypatch: pytest.MonkeyPatch, meanwhile: Meanwhile | None = None) -> list[bool]:
    """Record the ``optimistic`` flag of every txn 1 read of a payment; ``meanwhile(intent_id)`` runs right after
    each optimistic read (before the transaction writes)."""
    calls: list[bool] = []
    for name in ("intent_for_change", "intent_for_update"):
        original = getattr(repo, name)

        def spy(original: Any) -> Any:
            async def read(conn: Any, ctx: Any, intent_id: str, **kw: Any) -> Any:
                calls.append(kw["optimistic"])
                found = await original(conn, ctx, intent_id, **kw)
                if kw["optimistic"] and meanwhile is not None:
                    await meanwhile(intent_id)
                return found

            return read

        monkeypatch.setattr(repo, name, spy(original))
    return calls


def _set(merchant: Merchant, table: Any, row_id: str, **values: Any) -> Meanwhile:
    """A change another request commits to ``row_id`` (a different transaction, on another connection)."""

    async def change(_intent_id: str) -> None:
        async with merchant.server.gateway.db.write() as conn:
            await conn.execute(update(table).where(table.c.id == row_id).values(**values))

    return change


def _post(merchant: Merchant, path: str, data: dict[str, str], key: str) -> dict[str, Any]:
    resp = merchant.post(path, data, headers={"Idempotency-Key": key})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_confirm_capture_cancel_and_refund_read_the_payment_unlocked_on_postgres_and_locked_on_sqlite(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    manual = {**CARD, "capture_method": "manual"}
    to_confirm = _post(merchant, "/v1/payment_intents", {k: v for k, v in CARD.items() if k != "confirm"}, "c-0")
    to_capture, to_void = (
        _post(merchant, "/v1/payment_intents", manual, "c-1"),
        _post(merchant, "/v1/payment_intents", manual, "c-2"),
    )
    reads = _spy_reads(monkeypatch)

    confirmed = _post(merchant, f"/v1/payment_intents/{to_confirm['id']}/confirm", {}, "c-3")
    captured = _post(merchant, f"/v1/payment_intents/{to_capture['id']}/capture", {"amount_to_capture": "2000"}, "c-4")
    voided = _post(merchant, f"/v1/payment_intents/{to_void['id']}/cancel", {}, "c-5")
    refund = _post(merchant, "/v1/refunds", {"payment_intent": to_capture["id"], "amount": "500"}, "c-6")
    unkeyed = merchant.post("/v1/refunds", {"payment_intent": confirmed["id"]})

    assert (confirmed["status"], captured["status"], voided["status"]) == ("succeeded", "succeeded", "canceled")
    assert refund["status"] == "succeeded" and unkeyed.json()["amount"] == 2500
    assert reads == [merchant.server.backend == "postgres"] * 5
    assert ledger_problems(merchant) == []


@postgres_only
def test_a_capture_whose_payment_changed_after_its_read_is_decided_again_on_the_locked_row(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    authorized = _post(merchant, "/v1/payment_intents", {**CARD, "capture_method": "manual"}, "ch-1")
    reads = _spy_reads(monkeypatch, _set(merchant, pi, authorized["id"], description="changed meanwhile"))

    captured = merchant.post(f"/v1/payment_intents/{authorized['id']}/capture", {}, headers={"Idempotency-Key": "ch-2"})

    assert captured.status_code == 200 and captured.json()["status"] == "succeeded", captured.text
    assert reads == [True, False]  # the optimistic try wrote nothing; the locked one decided
    assert captured.json()["description"] == "changed meanwhile"
    assert captured.json() == merchant.get(f"/v1/payment_intents/{authorized['id']}").json()
    replay = merchant.post(f"/v1/payment_intents/{authorized['id']}/capture", {}, headers={"Idempotency-Key": "ch-2"})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.content == captured.content
    keys = select(func.count()).where(idempotency_keys.c.merchant_id == merchant.id, idempotency_keys.c.key == "ch-2")
    assert scalar(merchant, keys) == 1
    journals = select(func.count()).where(ledger_journals.c.payment_intent == authorized["id"])
    assert scalar(merchant, journals) == 1
    assert ledger_problems(merchant) == []


@postgres_only
def test_a_refund_whose_amount_was_reserved_by_another_after_its_read_is_refused_on_the_row_as_it_is(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = _post(merchant, "/v1/payment_intents", CARD, "rf-1")
    # Another refund reserves the whole amount between this one's read and its write.
    reads = _spy_reads(monkeypatch, _set(merchant, pi, paid["id"], amount_refund_pending=2500))

    refused = merchant.post("/v1/refunds", {"payment_intent": paid["id"]}, headers={"Idempotency-Key": "rf-2"})

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "charge_already_refunded"
    assert reads == [True, False]
    assert scalar(merchant, select(pi.c.amount_refund_pending).where(pi.c.id == paid["id"])) == 2500
    count = select(func.count()).where(refunds_table.c.payment_intent == paid["id"])
    assert scalar(merchant, count) == 0  # nothing of the optimistic try was written


@postgres_only
def test_a_confirmation_whose_payment_was_canceled_after_its_read_is_refused_and_moves_no_money(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = _post(merchant, "/v1/payment_intents", {k: v for k, v in CARD.items() if k != "confirm"}, "cf-1")
    reads = _spy_reads(monkeypatch, _set(merchant, pi, created["id"], status="canceled"))

    refused = merchant.post(f"/v1/payment_intents/{created['id']}/confirm", {}, headers={"Idempotency-Key": "cf-2"})

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "payment_intent_unexpected_state"
    assert reads == [True, False]
    current = merchant.get(f"/v1/payment_intents/{created['id']}").json()
    assert current["status"] == "canceled" and current["latest_charge"] is None
