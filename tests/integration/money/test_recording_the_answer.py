"""Txn 2 of a payment, a capture, a void or a refund — recording the processor's answer — on both databases.

On PostgreSQL it is first tried optimistically on the rows as txn 1 wrote them (one statement whose updates
only apply to that row version) and falls back to the locked read when a row changed in between; on SQLite it
is always the locked path. Either way an answer is applied once, to the rows as they are.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from paygate.connectors.base import PaymentResult, PaymentStatus, RefundResult, RefundStatus
from paygate.connectors.errors import ConnectorError
from paygate.connectors.sandbox import SandboxConnector
from paygate.db.tables import events, ledger_journals
from paygate.db.tables import payment_intents as pi
from paygate.merchants.context import AuthContext
from paygate.payments import flows
from paygate.payments import repository as repo
from paygate.refunds import repository as refund_repo
from paygate.refunds.service import apply_refund_result
from tests.conftest import Merchant
from tests.integration.money._support import ledger_problems, scalar

pytestmark = pytest.mark.db

CARD = {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def _count_locked_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on txn 2's locked read of intent and attempt; returns the list of intent ids it was called for."""
    calls: list[str] = []
    original = repo.get_intent_and_attempt

    async def spy(conn: Any, ctx: AuthContext, intent_id: str, attempt_id: str, *, lock: bool = False) -> Any:
        calls.append(intent_id)
        return await original(conn, ctx, intent_id, attempt_id, lock=lock)

    monkeypatch.setattr(repo, "get_intent_and_attempt", spy)
    return calls


def _after_the_processor(merchant: Merchant, monkeypatch: pytest.MonkeyPatch, meanwhile: Any) -> None:
    """Run ``meanwhile(intent, attempt, result)`` on the server between the processor's answer and txn 2."""
    payments = merchant.server.gateway.payments
    original = payments._authorize

    async def authorize(route: Any, intent: dict[str, Any], attempt: dict[str, Any], *held: Any) -> Any:
        result = await original(route, intent, attempt, *held)
        await meanwhile(intent, attempt, result)
        return result

    monkeypatch.setattr(payments, "_authorize", authorize)


def test_a_card_payment_records_its_answer_without_a_locked_read_on_postgres_only(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked_reads = _count_locked_reads(monkeypatch)
    paid = merchant.post("/v1/payment_intents", CARD, headers={"Idempotency-Key": "opt-1"})
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    assert paid.json() == merchant.get(f"/v1/payment_intents/{paid.json()['id']}").json()
    # Without an Idempotency-Key there is no claim, hence no row version: the locked path.
    unkeyed = merchant.post("/v1/payment_intents", CARD)
    assert unkeyed.status_code == 200 and unkeyed.json()["status"] == "succeeded"
    optimistic = merchant.server.backend == "postgres"
    assert locked_reads == ([] if optimistic else [paid.json()["id"]]) + [unkeyed.json()["id"]]


def test_an_answer_applied_by_someone_else_meanwhile_is_not_applied_twice(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status sync (say) records the same answer between the processor call and txn 2: txn 2 finds the
    attempt resolved and answers with the current state; one capture journal, one succeeded event."""
    gateway = merchant.server.gateway

    async def sync_first(
        intent: dict[str, Any], attempt: dict[str, Any], result: PaymentResult | ConnectorError
    ) -> None:
        ctx = AuthContext(merchant_id=intent["merchant_id"], livemode=intent["livemode"], key_kind="system")
        async with gateway.db.write(urgent=True) as conn:
            now_intent, now_attempt = await repo.get_intent_and_attempt(
                conn, ctx, intent["id"], attempt["id"], lock=True
            )
            assert now_attempt is not None
            await flows.apply_authorization(conn, ctx, now_intent, now_attempt, result)

    locked_reads = _count_locked_reads(monkeypatch)
    _after_the_processor(merchant, monkeypatch, sync_first)
    paid = merchant.post("/v1/payment_intents", CARD, headers={"Idempotency-Key": "opt-2"})

    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    intent_id = paid.json()["id"]
    assert locked_reads == [intent_id, intent_id]  # the sync's, then txn 2's fallback (SQLite: its only path)
    assert scalar(merchant, select(func.count()).where(ledger_journals.c.payment_intent == intent_id)) == 1
    succeeded = select(func.count()).where(events.c.object_id == intent_id, events.c.type == "payment_intent.succeeded")
    assert scalar(merchant, succeeded) == 1
    assert ledger_problems(merchant) == []


def test_a_change_to_the_intent_meanwhile_is_kept_and_shown_in_the_answer(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written by another transaction between txn 1 and txn 2 is never overwritten with, nor answered
    from, the state txn 1 left: the answer carries the change."""
    gateway = merchant.server.gateway

    async def annotate(intent: dict[str, Any], _attempt: dict[str, Any], _result: Any) -> None:
        async with gateway.db.write() as conn:
            await repo.update_intent(conn, intent, {"description": "changed while at the processor"})

    _after_the_processor(merchant, monkeypatch, annotate)
    paid = merchant.post(
        "/v1/payment_intents", {**CARD, "description": "at creation"}, headers={"Idempotency-Key": "opt-3"}
    )

    assert paid.status_code == 200 and paid.json()["status"] == "succeeded"
    assert paid.json()["description"] == "changed while at the processor"
    stored = scalar(merchant, select(pi.c.description).where(pi.c.id == paid.json()["id"]))
    assert stored == "changed while at the processor"
    replay = merchant.post(
        "/v1/payment_intents", {**CARD, "description": "at creation"}, headers={"Idempotency-Key": "opt-3"}
    )
    assert replay.json() == paid.json()


def test_a_confirmation_records_its_answer_without_a_locked_read_on_postgres_only(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = merchant.post("/v1/payment_intents", {"amount": "900", "currency": "eur"}).json()
    locked_reads = _count_locked_reads(monkeypatch)
    confirmed = merchant.post(
        f"/v1/payment_intents/{created['id']}/confirm",
        {"payment_method": "pm_card_visa"},
        headers={"Idempotency-Key": "opt-confirm"},
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded"
    assert confirmed.json() == merchant.get(f"/v1/payment_intents/{created['id']}").json()
    assert locked_reads == ([] if merchant.server.backend == "postgres" else [created["id"]])


def _authorized(merchant: Merchant) -> dict[str, Any]:
    created = merchant.post("/v1/payment_intents", {**CARD, "capture_method": "manual"})
    assert created.status_code == 200 and created.json()["status"] == "requires_capture", created.text
    return dict(created.json())


def _after_the_processor_call(monkeypatch: pytest.MonkeyPatch, operation: str, meanwhile: Any) -> None:
    """Run ``meanwhile(request)`` after the sandbox processor answered ``operation`` (``capture``, ``void``,
    ``refund``)."""
    original = getattr(SandboxConnector, operation)

    async def answered(self: SandboxConnector, req: Any, http: Any = None) -> Any:
        result = await original(self, req, http)
        await meanwhile(req)
        return result

    monkeypatch.setattr(SandboxConnector, operation, answered)


def test_a_capture_and_a_void_record_their_answers_without_a_locked_read_on_postgres_only(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    to_capture, to_void, unkeyed = _authorized(merchant), _authorized(merchant), _authorized(merchant)
    locked_reads = _count_locked_reads(monkeypatch)
    captured = merchant.post(
        f"/v1/payment_intents/{to_capture['id']}/capture", {"amount_to_capture": "1500"},
        headers={"Idempotency-Key": "opt-capture"},
    )  # fmt: skip
    assert captured.status_code == 200 and captured.json()["status"] == "succeeded", captured.text
    assert captured.json()["amount_received"] == 1500
    assert captured.json() == merchant.get(f"/v1/payment_intents/{to_capture['id']}").json()
    voided = merchant.post(f"/v1/payment_intents/{to_void['id']}/cancel", {}, headers={"Idempotency-Key": "opt-void"})
    assert voided.status_code == 200 and voided.json()["status"] == "canceled", voided.text
    assert voided.json() == merchant.get(f"/v1/payment_intents/{to_void['id']}").json()
    plain = merchant.post(f"/v1/payment_intents/{unkeyed['id']}/capture", {})  # no key, no version: locked
    assert plain.status_code == 200 and plain.json()["status"] == "succeeded"

    optimistic = merchant.server.backend == "postgres"
    assert locked_reads == ([] if optimistic else [to_capture["id"], to_void["id"]]) + [unkeyed["id"]]
    assert scalar(merchant, select(func.count()).where(ledger_journals.c.payment_intent == to_capture["id"])) == 1
    assert ledger_problems(merchant) == []


def test_a_capture_the_status_sync_recorded_meanwhile_is_recorded_once(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor's answer reaches the gateway twice (the sync, then the request's own txn 2): one capture
    journal, one succeeded event, and the request answers with the state the sync left."""
    gateway = merchant.server.gateway
    intent = _authorized(merchant)
    ctx = AuthContext(merchant_id=merchant.id, livemode=False, key_kind="system")

    async def sync_first(req: Any) -> None:
        async with gateway.db.write(urgent=True) as conn:
            now_intent, now_attempt = await repo.get_intent_and_attempt(
                conn, ctx, intent["id"], intent["latest_charge"], lock=True
            )
            assert now_attempt is not None
            captured = PaymentResult(status=PaymentStatus.CAPTURED, amount_captured=req.amount)
            await flows.apply_capture(conn, ctx, now_intent, now_attempt, req.amount, captured)

    locked_reads = _count_locked_reads(monkeypatch)
    _after_the_processor_call(monkeypatch, "capture", sync_first)
    captured = merchant.post(f"/v1/payment_intents/{intent['id']}/capture", {}, headers={"Idempotency-Key": "cap-2x"})

    assert captured.status_code == 200 and captured.json()["status"] == "succeeded", captured.text
    assert locked_reads == [intent["id"], intent["id"]]  # the sync's, then txn 2's fallback (SQLite: its only path)
    assert scalar(merchant, select(func.count()).where(ledger_journals.c.payment_intent == intent["id"])) == 1
    succeeded = select(func.count()).where(
        events.c.object_id == intent["id"], events.c.type == "payment_intent.succeeded"
    )
    assert scalar(merchant, succeeded) == 1
    assert ledger_problems(merchant) == []


def test_a_change_to_the_intent_during_a_void_is_kept_and_shown_in_the_answer(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = merchant.server.gateway
    intent = _authorized(merchant)

    async def annotate(_req: Any) -> None:
        async with gateway.db.write() as conn:
            await repo.update_intent(conn, intent, {"description": "changed while voiding"})

    _after_the_processor_call(monkeypatch, "void", annotate)
    voided = merchant.post(f"/v1/payment_intents/{intent['id']}/cancel", {}, headers={"Idempotency-Key": "void-chg"})

    assert voided.status_code == 200 and voided.json()["status"] == "canceled", voided.text
    assert voided.json()["description"] == "changed while voiding"
    assert voided.json() == merchant.get(f"/v1/payment_intents/{intent['id']}").json()


def _count_locked_refund_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on locked reads of refunds (txn 2's locked path); returns the refund ids read locked."""
    calls: list[str] = []
    original = refund_repo.get_refund

    async def spy(conn: Any, ctx: AuthContext, refund_id: str, *, lock: bool = False) -> Any:
        if lock:
            calls.append(refund_id)
        return await original(conn, ctx, refund_id, lock=lock)

    monkeypatch.setattr(refund_repo, "get_refund", spy)
    return calls


def _captured(merchant: Merchant) -> dict[str, Any]:
    paid = merchant.post("/v1/payment_intents", CARD)
    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    return dict(paid.json())


def test_a_refund_records_its_answer_without_a_locked_read_on_postgres_only(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = _captured(merchant)
    locked_reads = _count_locked_refund_reads(monkeypatch)
    refund = merchant.post(
        "/v1/refunds", {"payment_intent": paid["id"], "amount": "600"}, headers={"Idempotency-Key": "opt-refund"}
    )
    assert refund.status_code == 200 and refund.json()["status"] == "succeeded", refund.text
    assert refund.json() == merchant.get(f"/v1/refunds/{refund.json()['id']}").json()
    rest = merchant.post("/v1/refunds", {"payment_intent": paid["id"]})  # no key, no version: locked
    assert rest.status_code == 200 and rest.json()["amount"] == 1900

    optimistic = merchant.server.backend == "postgres"
    assert locked_reads == ([] if optimistic else [refund.json()["id"]]) + [rest.json()["id"]]
    charge = merchant.get(f"/v1/payment_intents/{paid['id']}", params={"expand[]": "latest_charge"}).json()
    assert charge["latest_charge"]["amount_refunded"] == 2500
    assert ledger_problems(merchant) == []


def test_a_refund_the_status_sync_recorded_meanwhile_is_recorded_once(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = merchant.server.gateway
    paid = _captured(merchant)
    ctx = AuthContext(merchant_id=merchant.id, livemode=False, key_kind="system")

    async def sync_first(req: Any) -> None:
        async with gateway.db.write(urgent=True) as conn:
            refund = await refund_repo.get_refund(conn, ctx, req.refund_id, lock=True)
            done = RefundResult(status=RefundStatus.SUCCEEDED, processor_reference=f"sync-{req.refund_id}")
            await apply_refund_result(conn, ctx, refund, done)

    locked_reads = _count_locked_refund_reads(monkeypatch)
    _after_the_processor_call(monkeypatch, "refund", sync_first)
    refund = merchant.post("/v1/refunds", {"payment_intent": paid["id"]}, headers={"Idempotency-Key": "re-2x"})

    assert refund.status_code == 200 and refund.json()["status"] == "succeeded", refund.text
    refund_id = refund.json()["id"]
    assert locked_reads == [refund_id, refund_id]  # the sync's, then txn 2's fallback (SQLite: its only path)
    journals = select(func.count()).where(ledger_journals.c.ref_id == refund_id)
    assert scalar(merchant, journals) == 1
    charge = merchant.get(f"/v1/payment_intents/{paid['id']}", params={"expand[]": "latest_charge"}).json()
    assert charge["latest_charge"]["amount_refunded"] == 2500
    assert ledger_problems(merchant) == []
