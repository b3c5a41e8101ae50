"""Idempotency keys: Stripe's replay semantics, and crash recovery that never authorizes twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from paygate.idempotency import service as idem
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest
from paygate.merchants.context import AuthContext
from tests.conftest import Merchant

pytestmark = pytest.mark.db

CARD = {"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def test_replay_returns_the_stored_body_byte_for_byte_with_replayed_header(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "replay-1"}
    first = merchant.post("/v1/payment_intents", CARD, headers=h)
    second = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"


def test_declines_are_stored_and_replayed_without_a_second_authorization(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "decline-1"}
    body = {**CARD, "payment_method": "pm_card_chargeDeclined"}
    first = merchant.post("/v1/payment_intents", body, headers=h)
    second = merchant.post("/v1/payment_intents", body, headers=h)
    assert first.status_code == second.status_code == 402
    assert second.json() == first.json()
    charge = first.json()["error"]["charge"]
    assert len(merchant.server.gateway.sandbox.operations_of("authorize", charge)) == 1


def test_validation_failures_are_not_stored_so_the_key_can_be_reused(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "fix-and-retry"}
    bad = merchant.post("/v1/payment_intents", {"currency": "usd"}, headers=h)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "parameter_missing"
    good = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert good.status_code == 200


def test_same_key_other_parameters_is_an_idempotency_error(merchant: Merchant) -> None:
    h = {"Idempotency-Key": "k-params"}
    assert merchant.post("/v1/payment_intents", CARD, headers=h).status_code == 200
    other = merchant.post("/v1/payment_intents", {**CARD, "amount": "2600"}, headers=h)
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    other_path = merchant.post("/v1/refunds", {"payment_intent": "pi_x"}, headers=h)
    assert other_path.json()["error"]["type"] == "idempotency_error"


def test_keys_are_scoped_per_merchant(merchant: Merchant, other_merchant: Merchant) -> None:
    h = {"Idempotency-Key": "shared-key"}
    a = merchant.post("/v1/payment_intents", CARD, headers=h).json()
    b = other_merchant.post("/v1/payment_intents", CARD, headers=h).json()
    assert a["id"] != b["id"]


@pytest.fixture
def crash_after_processor_answers(merchant: Merchant) -> Iterator[dict[str, int]]:
    """Make the next confirmation die after the processor authorized but before the result was recorded:
    the window in which a naive gateway would charge twice on retry."""
    service = merchant.server.gateway.payments
    real = service._complete_authorization
    state = {"crashes": 1}

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        if state["crashes"] > 0:
            state["crashes"] -= 1
            raise RuntimeError("simulated crash between the processor call and the second transaction")
        return await real(*args, **kwargs)

    service._complete_authorization = crashing  # type: ignore[method-assign]
    yield state
    service._complete_authorization = real  # type: ignore[method-assign]


def test_retry_after_crash_resumes_from_checkpoint_and_authorizes_exactly_once(
    merchant: Merchant, crash_after_processor_answers: dict[str, int]
) -> None:
    h = {"Idempotency-Key": "crash-1"}
    crashed = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert crashed.status_code == 500
    assert crashed.json()["error"]["type"] == "api_error"
    (pi,) = merchant.get("/v1/payment_intents").json()["data"]
    assert pi["status"] == "processing"  # recorded before the call, outcome not yet applied

    retried = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert retried.status_code == 200, retried.text
    assert retried.json()["id"] == pi["id"]
    assert retried.json()["status"] == "succeeded"
    assert len(merchant.server.gateway.sandbox.operations_of("authorize", pi["latest_charge"])) == 1
    assert len(merchant.get("/v1/payment_intents").json()["data"]) == 1


def test_a_dead_process_lease_blocks_retries_until_it_expires_then_resumes(
    merchant: Merchant, crash_after_processor_answers: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def process_died(db: Any, guard: Any) -> None:  # SIGKILL: nobody releases the key
        return None

    monkeypatch.setattr(idem, "_release", process_died)
    h = {"Idempotency-Key": "killed-1"}
    assert merchant.post("/v1/payment_intents", CARD, headers=h).status_code == 500
    in_use = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert in_use.status_code == 409
    assert in_use.json()["error"]["code"] == "idempotency_key_in_use"

    monkeypatch.setattr(clock, "offset", clock.offset + idem.LOCK_SECONDS + 1)
    resumed = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "succeeded"
    assert len(merchant.server.gateway.sandbox.operations_of("authorize", resumed.json()["latest_charge"])) == 1


def test_crash_during_refund_resumes_with_the_same_refund(merchant: Merchant, monkeypatch: pytest.MonkeyPatch) -> None:
    pi = merchant.post("/v1/payment_intents", CARD).json()
    from paygate.refunds import service as refunds_service

    real = refunds_service.apply_refund_result
    crashes = {"n": 1}

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        if crashes["n"]:
            crashes["n"] -= 1
            raise RuntimeError("simulated crash after the processor refunded")
        return await real(*args, **kwargs)

    monkeypatch.setattr(refunds_service, "apply_refund_result", crashing)
    h = {"Idempotency-Key": "refund-crash"}
    body = {"payment_intent": pi["id"], "amount": "1000"}
    assert merchant.post("/v1/refunds", body, headers=h).status_code == 500
    retried = merchant.post("/v1/refunds", body, headers=h)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    refunds = merchant.get("/v1/refunds", params={"payment_intent": pi["id"]}).json()["data"]
    assert [r["id"] for r in refunds] == [retried.json()["id"]]
    assert len(merchant.server.gateway.sandbox.operations_of("refund", retried.json()["id"])) == 1


def test_finished_keys_are_pruned_after_24_hours_but_checkpointed_ones_are_kept(
    merchant: Merchant, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = {"Idempotency-Key": "old-key"}
    first = merchant.post("/v1/payment_intents", CARD, headers=h)
    assert merchant.post("/v1/payment_intents", CARD, headers=h).headers["idempotent-replayed"] == "true"
    job = idem.PruneJob(merchant.server.gateway.db)
    while merchant.server.call(job.run_once()):  # whatever was already due
        pass
    assert merchant.post("/v1/payment_intents", CARD, headers=h).headers["idempotent-replayed"] == "true"
    monkeypatch.setattr(clock, "offset", clock.offset + idem.RETENTION_SECONDS + 1)
    while merchant.server.call(job.run_once()):
        pass
    again = merchant.post("/v1/payment_intents", CARD, headers=h)  # executes anew: the key was forgotten
    assert again.status_code == 200
    assert again.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("claim_with_first_write", [False, True], ids=["claimed-first", "claimed-in-first-write"])
def test_a_rejected_request_is_answered_and_not_stored_and_never_refuses_a_replay(
    merchant: Merchant, claim_with_first_write: bool
) -> None:
    """A handler's Rejected (a check that depends on the time or on other objects) answers its error without
    storing it; once the key holds a stored answer, a replay gets that answer even if the check now refuses."""
    db = merchant.server.gateway.db
    ctx = AuthContext(merchant_id=merchant.id, livemode=False, key_kind="secret")
    refuse = True
    executed: list[int] = []

    async def handler(guard: idem.Guard) -> idem.Reply:
        if refuse:
            raise idem.Rejected(InvalidRequest("No longer valid.", param="expires_at"))
        executed.append(1)
        reply = idem.Reply(200, b'{"ok":true}')
        async with db.write() as conn:
            await guard.finish(conn, reply.status, reply.body)
        return reply

    def call() -> idem.Reply:
        return merchant.server.call(
            idem.run_idempotent(
                db,
                ctx,
                key=f"rejected-{claim_with_first_write}",
                method="POST",
                path="/v1/things",
                params={"a": "1"},
                handler=handler,
                claim_with_first_write=claim_with_first_write,
            )
        )

    refused = call()
    assert refused.status == 400 and not refused.replayed
    assert orjson.loads(refused.body)["error"]["param"] == "expires_at"
    refuse = False
    done = call()  # the refusal was not stored: this executes
    assert (done.status, done.replayed, executed) == (200, False, [1])
    refuse = True
    again = call()  # stored now: replayed, the check is not asked
    assert (again.status, again.body, again.replayed, executed) == (200, done.body, True, [1])
    unkeyed = merchant.server.call(
        idem.run_idempotent(db, ctx, key=None, method="POST", path="/v1/things", params={}, handler=handler)
    )
    assert unkeyed.status == 400
