"""Inbound processor webhooks: verified, deduplicated, applied once by the worker, never backwards."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
from sqlalchemy import func, insert, select, update

from paygate.connectors.signing import sign_timestamped
from paygate.db.tables import events, ledger_journals, payment_intents, refunds
from paygate.hooks.tables import inbound_webhooks
from paygate.kit.clock import clock
from paygate.worker.runner import Job
from tests.conftest import Merchant
from tests.integration.webhooks._support import SIM_SECRET, drain
from tests.support.server import RunningServer

HOOK = "/hooks/sandbox/sandbox"


def _payment(m: Merchant, pm: str) -> dict[str, Any]:
    resp = m.post("/v1/payment_intents", {"amount": 2000, "currency": "usd", "payment_method": pm, "confirm": "true"})
    body: dict[str, Any] = resp.json()
    return body


def _event(evt_id: str, kind: str, status: str, key: str, ref: str | None = None, amount: int = 2000) -> bytes:
    data = {
        "object": kind,
        "id": ref or f"ref_{key}",
        "status": status,
        "amount": amount,
        "currency": "usd",
        "idempotency_key": key,
    }
    return orjson.dumps({"id": evt_id, "type": f"{kind}.{status}", "created": clock.now(), "data": data})


def _post(server: RunningServer, body: bytes, *, secret: str = SIM_SECRET, ts: int | None = None) -> httpx2.Response:
    sig = sign_timestamped(secret, ts if ts is not None else clock.now(), body)
    return httpx2.post(server.base_url + HOOK, content=body, headers={"Paygate-Sim-Signature": sig})


def _intent(server: RunningServer, intent_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with server.gateway.db.read() as conn:
            row = (
                (await conn.execute(select(payment_intents).where(payment_intents.c.id == intent_id))).mappings().one()
            )
            return dict(row)

    return server.call(go())


def _count(server: RunningServer, stmt: Any) -> int:
    async def go() -> int:
        async with server.gateway.db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    return server.call(go())


def _queued_done(server: RunningServer) -> bool:
    return (
        _count(server, select(func.count()).select_from(inbound_webhooks).where(inbound_webhooks.c.status == "queued"))
        == 0
    )


def test_the_same_webhook_five_times_is_applied_once(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    pi = _payment(wh_merchant, "pm_card_simTimeout")
    assert pi["status"] == "processing"
    body = _event(f"evt_{pi['id']}", "payment", "captured", pi["latest_charge"])
    outcomes = [_post(wh_server, body).json()["outcome"] for _ in range(5)]
    assert outcomes == ["queued"] + ["duplicate"] * 4
    drain(wh_server, jobs, lambda: _queued_done(wh_server))
    assert _intent(wh_server, pi["id"])["status"] == "succeeded"
    succeeded = (
        select(func.count())
        .select_from(events)
        .where(events.c.object_id == pi["id"], events.c.type == "payment_intent.succeeded")
    )
    assert _count(wh_server, succeeded) == 1
    journals = select(func.count()).select_from(ledger_journals).where(ledger_journals.c.payment_intent == pi["id"])
    assert _count(wh_server, journals) == 1


def test_forged_tampered_or_stale_webhooks_are_rejected_without_change(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    pi = _payment(wh_merchant, "pm_card_simTimeout")
    body = _event(f"evt_x_{pi['id']}", "payment", "captured", pi["latest_charge"])
    sig = sign_timestamped(SIM_SECRET, clock.now(), body)
    tampered = httpx2.post(
        wh_server.base_url + HOOK, content=body.replace(b"2000", b"9000"), headers={"Paygate-Sim-Signature": sig}
    )
    wrong_secret = _post(wh_server, body, secret="whsec_wrong")
    stale = _post(wh_server, body, ts=clock.now() - 301)
    assert [r.status_code for r in (tampered, wrong_secret, stale)] == [400, 400, 400]
    drain(wh_server, jobs, lambda: _queued_done(wh_server))
    assert _intent(wh_server, pi["id"])["status"] == "processing"
    rejected = select(func.count()).select_from(inbound_webhooks).where(inbound_webhooks.c.status == "rejected")
    assert _count(wh_server, rejected) >= 3  # the raw requests are kept as evidence


def test_unknown_processor_account_is_404(wh_server: RunningServer) -> None:
    resp = httpx2.post(wh_server.base_url + "/hooks/sandbox/acct_nope", content=b"{}")
    assert resp.status_code == 404


def test_late_and_out_of_order_events_never_move_a_payment_backwards(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    pi = _payment(wh_merchant, "pm_card_simTimeout")
    key = pi["latest_charge"]
    for n, status in enumerate(["captured", "authorized", "pending"]):  # newest first
        assert _post(wh_server, _event(f"evt_ooo{n}_{key}", "payment", status, key)).status_code == 200
        drain(wh_server, jobs, lambda: _queued_done(wh_server))
    assert _intent(wh_server, pi["id"])["status"] == "succeeded"


def test_refunded_before_captured_ends_refunded_and_captured(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    """The refund's outcome was lost (refund pending at paygate); the processor then reports the refund and,
    late, the capture. The refund settles; the late capture changes nothing."""
    pi = _payment(wh_merchant, "pm_card_visa")
    refund_id = f"re_test_{pi['id'][-12:]}"

    async def pending_refund() -> None:
        now = clock.now()
        async with wh_server.gateway.db.write() as conn:
            await conn.execute(
                insert(refunds).values(
                    id=refund_id, merchant_id=wh_merchant.id, livemode=False, payment_intent=pi["id"],
                    charge=pi["latest_charge"], amount=2000, currency="usd", status="pending", metadata="{}",
                    created=now, updated=now,
                )
            )  # fmt: skip
            await conn.execute(
                update(payment_intents).where(payment_intents.c.id == pi["id"]).values(amount_refund_pending=2000)
            )

    wh_server.call(pending_refund())
    key = pi["latest_charge"]
    _post(wh_server, _event(f"evt_rf_{refund_id}", "refund", "succeeded", refund_id, ref="sbx_re_x"))
    _post(wh_server, _event(f"evt_cap_{key}", "payment", "captured", key))
    drain(wh_server, jobs, lambda: _queued_done(wh_server))
    intent = _intent(wh_server, pi["id"])
    amounts = (intent["amount_received"], intent["amount_refunded"], intent["amount_refund_pending"])
    assert intent["status"] == "succeeded" and amounts == (2000, 2000, 0)
    assert wh_merchant.get(f"/v1/refunds/{refund_id}").json()["status"] == "succeeded"


def test_an_event_contradicting_paygate_is_checked_with_the_processor_first(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    pi = _payment(wh_merchant, "pm_card_visa")
    key = pi["latest_charge"]
    _post(wh_server, _event(f"evt_conflict_{key}", "payment", "failed", key))
    drain(wh_server, jobs, lambda: _queued_done(wh_server))
    assert _intent(wh_server, pi["id"])["status"] == "succeeded"

    async def outcome() -> str:
        async with wh_server.gateway.db.read() as conn:
            stmt = select(inbound_webhooks.c.outcome).where(inbound_webhooks.c.event_id == f"evt_conflict_{key}")
            return str((await conn.execute(stmt)).scalar_one())

    assert wh_server.call(outcome()).startswith("conflict: event said failed, sync said captured")


def test_an_event_contradicting_a_final_refund_asks_the_processor_and_changes_nothing(
    wh_server: RunningServer, wh_merchant: Merchant, jobs: list[Job]
) -> None:
    pi = _payment(wh_merchant, "pm_card_visa")
    refund = wh_merchant.post("/v1/refunds", {"payment_intent": pi["id"], "amount": "500"}).json()
    assert refund["status"] == "succeeded"
    refunds_before = len(wh_server.gateway.sandbox.operations_of("refund", refund["id"]))
    _post(wh_server, _event(f"evt_rf_conflict_{refund['id']}", "refund", "failed", refund["id"], ref="sbx_re_y"))
    drain(wh_server, jobs, lambda: _queued_done(wh_server))

    async def outcome() -> str:
        async with wh_server.gateway.db.read() as conn:
            stmt = select(inbound_webhooks.c.outcome).where(
                inbound_webhooks.c.event_id == f"evt_rf_conflict_{refund['id']}"
            )
            return str((await conn.execute(stmt)).scalar_one())

    assert wh_server.call(outcome()) == "conflict: paygate has succeeded, event says failed, processor says succeeded"
    assert wh_merchant.get(f"/v1/refunds/{refund['id']}").json()["status"] == "succeeded"
    assert _intent(wh_server, pi["id"])["amount_refunded"] == 500
    # asking replays the recorded refund under the same key: no second refund at the processor
    assert len(wh_server.gateway.sandbox.operations_of("refund", refund["id"])) == refunds_before
