"""Session expiry and completion outside the page: the worker job, expiry on access (retrieve, list, the page),
the grace period on both sides, the in-flight rules, and the events each transition emits exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from paygate.checkout import repository as repo
from paygate.checkout.job import CheckoutExpiryJob
from paygate.checkout.lifecycle import ACTION_WINDOW_SECONDS
from paygate.kit.clock import clock
from paygate.worker.jobs import default_jobs
from tests.checkout._sessions_support import (
    SLOW,
    THREE_DS,
    TIMEOUT,
    authorizations,
    card,
    clock_moved,
    create_session,
    events_for,
    intent_row,
    session_row,
)
from tests.conftest import Merchant
from tests.support.server import RunningServer

pytestmark = pytest.mark.db

LIFETIME = 600  # the default
GRACE = 60


def _run_job(server: RunningServer) -> int:
    return server.call(CheckoutExpiryJob().run_once(server.gateway))


def _status(server: RunningServer, session_id: str) -> str:
    return str(session_row(server, session_id)["status"])


def test_expiry_job_is_one_of_the_default_worker_jobs(server: RunningServer) -> None:
    assert any(isinstance(job, CheckoutExpiryJob) for job in default_jobs(server.gateway))


def test_job_expires_a_due_session_cancels_its_intent_and_emits_one_event(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    with clock_moved(LIFETIME + GRACE + 1):
        assert _run_job(server) >= 1
        assert _run_job(server) == 0 or _status(server, session["id"]) == "expired"
    row = session_row(server, session["id"])
    assert row["status"] == "expired" and row["expired_at"] is not None
    intent = intent_row(server, session["payment_intent"])
    assert intent["status"] == "canceled" and intent["cancellation_reason"] == "abandoned"
    expired = events_for(server, session["id"], "checkout.session.expired")
    assert len(expired) == 1
    assert expired[0]["data"]["object"]["status"] == "expired"
    assert expired[0]["data"]["object"]["id"] == session["id"]
    assert len(events_for(server, session["payment_intent"], "payment_intent.canceled")) == 1


def test_session_stays_open_until_expires_at_plus_grace(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    with clock_moved(LIFETIME + GRACE - 1):
        _run_job(server)
        assert merchant.get(f"/v1/checkout/sessions/{session['id']}").json()["status"] == "open"
    assert events_for(server, session["id"], "checkout.session.expired") == []


@pytest.mark.parametrize("access", ["retrieve", "list", "load_page"])
def test_access_applies_a_due_expiry(merchant: Merchant, access: str) -> None:
    server = merchant.server
    session = create_session(merchant)
    with clock_moved(LIFETIME + GRACE + 5):
        if access == "retrieve":
            assert merchant.get(f"/v1/checkout/sessions/{session['id']}").json()["status"] == "expired"
        elif access == "list":
            listed = merchant.get("/v1/checkout/sessions", params={"payment_intent": session["payment_intent"]})
            assert [s["status"] for s in listed.json()["data"]] == ["expired"]
        else:
            page = server.call(server.gateway.checkout.load_page(session["id"]))
            assert page is not None and page.status == "expired"
    assert len(events_for(server, session["id"], "checkout.session.expired")) == 1
    assert intent_row(server, session["payment_intent"])["status"] == "canceled"


def test_racing_job_and_accesses_expire_once(merchant: Merchant) -> None:
    server = merchant.server
    gw = server.gateway
    session = create_session(merchant)

    async def race() -> list[Any]:
        return await asyncio.gather(
            CheckoutExpiryJob().run_once(gw),
            gw.checkout.load_page(session["id"]),
            gw.checkout.load_page(session["id"]),
            gw.checkout.lifecycle.settle(session["id"]),
            CheckoutExpiryJob().run_once(gw),
        )

    with clock_moved(LIFETIME + GRACE + 5):
        server.call(race())
    assert _status(server, session["id"]) == "expired"
    assert len(events_for(server, session["id"], "checkout.session.expired")) == 1
    assert len(events_for(server, session["payment_intent"], "payment_intent.canceled")) == 1


def test_submit_inside_the_grace_period_still_pays(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    with clock_moved(LIFETIME + GRACE // 2):
        outcome = server.call(server.gateway.checkout.pay(session["id"], card(), return_url="https://r.example/r"))
        assert outcome.kind == "succeeded"
        _run_job(server)
    assert _status(server, session["id"]) == "complete"
    assert events_for(server, session["id"], "checkout.session.expired") == []


def test_submit_after_the_grace_period_is_refused_and_expires_the_session(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    with clock_moved(LIFETIME + GRACE + 1):
        outcome = server.call(server.gateway.checkout.pay(session["id"], card(), return_url="https://r.example/r"))
    assert outcome.kind == "expired"
    assert authorizations(server, session["payment_intent"]) == 0
    assert _status(server, session["id"]) == "expired"
    assert len(events_for(server, session["id"], "checkout.session.expired")) == 1


def test_submit_to_an_already_expired_session_is_refused_even_inside_the_grace_period(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    assert merchant.post(f"/v1/checkout/sessions/{session['id']}/expire").status_code == 200
    outcome = server.call(server.gateway.checkout.pay(session["id"], card(), return_url="https://r.example/r"))
    assert outcome.kind == "expired"
    assert authorizations(server, session["payment_intent"]) == 0


def test_job_never_expires_a_session_while_a_submit_is_in_flight(merchant: Merchant) -> None:
    """The submit starts inside the grace period; while the processor is still answering, the deadline passes
    and the job runs: the session stays open, then completes."""
    server = merchant.server
    gw = server.gateway
    session = create_session(merchant)

    async def scenario() -> tuple[str, str, int]:
        task = asyncio.create_task(gw.checkout.pay(session["id"], card(SLOW), return_url="https://r.example/r"))
        for _ in range(200):  # until the submit holds the claim
            async with gw.db.read() as conn:
                row = await repo.get_session(conn, session["id"])
            assert row is not None
            if row["pay_claim"]:
                break
            await asyncio.sleep(0.01)
        clock.offset += GRACE  # now past expires_at + grace, with the authorization still in flight
        expired_now = await CheckoutExpiryJob().run_once(gw)
        async with gw.db.read() as conn:
            row = await repo.get_session(conn, session["id"])
        assert row is not None
        outcome = await task
        return row["status"], outcome.kind, expired_now

    before, slow = clock.offset, gw.sandbox.slow_seconds
    gw.sandbox.slow_seconds = 0.5
    clock.offset += LIFETIME + GRACE - 5
    try:
        status_during, outcome, _ = server.call(scenario())
    finally:
        clock.offset, gw.sandbox.slow_seconds = before, slow
    assert status_during == "open"
    assert outcome == "succeeded"
    assert _status(server, session["id"]) == "complete"
    assert events_for(server, session["id"], "checkout.session.expired") == []
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1


def test_processing_payment_blocks_expiry_until_the_status_sync_completes_it(merchant: Merchant) -> None:
    """A processor timeout leaves the outcome unknown: the session outlives its deadline, and once the status
    sync learns the payment succeeded the job completes the session (completion outside the page)."""
    server = merchant.server
    gw = server.gateway
    session = create_session(merchant)
    outcome = server.call(gw.checkout.pay(session["id"], card(TIMEOUT), return_url="https://r.example/r"))
    assert outcome.kind == "processing"
    assert intent_row(server, session["payment_intent"])["status"] == "processing"
    with clock_moved(LIFETIME + GRACE + 10):
        _run_job(server)
        assert merchant.get(f"/v1/checkout/sessions/{session['id']}").json()["status"] == "open"
        refused = merchant.post(f"/v1/checkout/sessions/{session['id']}/expire")
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "checkout_session_payment_in_progress"
        again = server.call(gw.checkout.pay(session["id"], card(), return_url="https://r.example/r"))
        assert again.kind == "processing"
        server.call(gw.status_sync.run_once())
        assert intent_row(server, session["payment_intent"])["status"] == "succeeded"
        assert _run_job(server) >= 1
    row = session_row(server, session["id"])
    assert (row["status"], row["payment_status"]) == ("complete", "paid")
    assert len(events_for(server, session["id"], "checkout.session.completed")) == 1
    assert events_for(server, session["id"], "checkout.session.expired") == []
    assert authorizations(server, session["payment_intent"]) == 1


def test_job_completes_a_session_paid_through_the_api_outside_the_page(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    confirmed = merchant.post(
        f"/v1/payment_intents/{session['payment_intent']}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert confirmed.json()["status"] == "succeeded"
    assert _run_job(server) >= 1
    assert _status(server, session["id"]) == "complete"
    completed = events_for(server, session["id"], "checkout.session.completed")
    assert len(completed) == 1 and completed[0]["data"]["object"]["payment_status"] == "paid"


def test_abandoned_three_d_secure_blocks_expiry_only_for_the_action_window(merchant: Merchant) -> None:
    server = merchant.server
    session = create_session(merchant)
    outcome = server.call(server.gateway.checkout.pay(session["id"], card(THREE_DS), return_url="https://r.example/r"))
    assert outcome.kind == "requires_action"
    with clock_moved(LIFETIME + GRACE + 10):
        _run_job(server)
        assert _status(server, session["id"]) == "open"
    with clock_moved(ACTION_WINDOW_SECONDS + 1):
        _run_job(server)
        assert _status(server, session["id"]) == "expired"
    assert intent_row(server, session["payment_intent"])["status"] == "canceled"
    assert len(events_for(server, session["id"], "checkout.session.expired")) == 1


def test_api_expire_while_a_submit_holds_the_claim_is_lock_timeout(merchant: Merchant) -> None:
    server = merchant.server
    gw = server.gateway
    session = create_session(merchant)

    async def scenario() -> tuple[int, str]:
        task = asyncio.create_task(gw.checkout.pay(session["id"], card(SLOW), return_url="https://r.example/r"))
        for _ in range(200):
            async with gw.db.read() as conn:
                row = await repo.get_session(conn, session["id"])
            if row is not None and row["pay_claim"]:
                break
            await asyncio.sleep(0.01)
        async with httpx2.AsyncClient(base_url=server.base_url, auth=(merchant.secret_key, "")) as client:
            resp = await client.post(f"/v1/checkout/sessions/{session['id']}/expire")
        return resp.status_code, (await task).kind

    slow = gw.sandbox.slow_seconds
    gw.sandbox.slow_seconds = 0.5
    try:
        status, kind = server.call(scenario())
    finally:
        gw.sandbox.slow_seconds = slow
    assert status == 429
    assert kind == "succeeded"
    assert _status(server, session["id"]) == "complete"


def test_a_held_submit_claim_alone_keeps_the_job_away_until_released(merchant: Merchant) -> None:
    """Between taking the claim and recording the attempt, the intent still looks untouched: the claim itself
    must stop the job."""
    server = merchant.server
    gw = server.gateway
    session = create_session(merchant)

    async def claim() -> bool:
        async with gw.db.write() as conn:
            return await repo.claim_pay(
                conn,
                session["id"],
                token="claim_test",
                now=clock.now(),
                lease_seconds=120,
                grace_seconds=GRACE,
                customer_details="{}",
            )

    async def release() -> None:
        async with gw.db.write() as conn:
            await repo.release_pay(conn, session["id"], "claim_test")

    with clock_moved(LIFETIME + GRACE - 1):
        assert server.call(claim())
    with clock_moved(LIFETIME + GRACE + 30):
        _run_job(server)
        assert merchant.get(f"/v1/checkout/sessions/{session['id']}").json()["status"] == "open"
        server.call(release())
        _run_job(server)
        assert _status(server, session["id"]) == "expired"
