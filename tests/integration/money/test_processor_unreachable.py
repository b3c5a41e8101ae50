"""A processor that provably never received a capture, void or refund: nothing is lost, nothing stays locked,
and a retry — with the same Idempotency-Key too, as the Stripe SDKs send it — does what was asked, once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from paygate.connectors.errors import ProcessorUnavailable
from paygate.connectors.sandbox import SandboxConnector
from paygate.kit.clock import clock
from tests.conftest import Merchant
from tests.integration.money._support import ledger_problems

pytestmark = pytest.mark.db


@pytest.fixture
def processor_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """While the yielded list holds an operation's name (``capture``, ``void``, ``refund``), the sandbox
    processor refuses it as unreachable: the connection failed before anything was sent."""
    down: list[str] = []
    for name in ("capture", "void", "refund"):
        original = getattr(SandboxConnector, name)

        def refusing(original: Any = original, name: str = name) -> Any:
            async def call(self: SandboxConnector, req: Any, http: Any = None) -> Any:
                if name in down:
                    raise ProcessorUnavailable(f"{name}: connection refused")
                return await original(self, req, http)

            return call

        monkeypatch.setattr(SandboxConnector, name, refusing())
    yield down


def _authorized(merchant: Merchant) -> dict[str, Any]:
    created = merchant.post(
        "/v1/payment_intents",
        {"amount": "4000", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true",
         "capture_method": "manual"},
    )  # fmt: skip
    assert created.status_code == 200 and created.json()["status"] == "requires_capture", created.text
    return dict(created.json())


def test_a_capture_the_processor_never_received_is_retryable_with_the_same_key_and_leaves_nothing_locked(
    merchant: Merchant, processor_down: list[str]
) -> None:
    pi = _authorized(merchant)
    capture = f"/v1/payment_intents/{pi['id']}/capture"
    processor_down.append("capture")
    refused = merchant.post(capture, {"amount_to_capture": "3000"}, headers={"Idempotency-Key": "cap-down"})

    assert refused.status_code == 503 and refused.json()["error"]["code"] == "processor_unavailable"
    assert refused.headers["Stripe-Should-Retry"] == "true" and refused.headers["Retry-After"] == "1"
    after = merchant.get(f"/v1/payment_intents/{pi['id']}").json()
    assert after["status"] == "requires_capture" and after["amount_capturable"] == 4000
    sandbox = merchant.server.gateway.sandbox
    assert sandbox.operations_of("capture", f"{pi['latest_charge']}-capture") == []

    processor_down.clear()
    retried = merchant.post(capture, {"amount_to_capture": "3000"}, headers={"Idempotency-Key": "cap-down"})
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json()["status"] == "succeeded" and retried.json()["amount_received"] == 3000
    replay = merchant.post(capture, {"amount_to_capture": "3000"}, headers={"Idempotency-Key": "cap-down"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == retried.json()
    assert len(sandbox.operations_of("capture", f"{pi['latest_charge']}-capture")) == 1
    assert ledger_problems(merchant) == []


def test_a_void_the_processor_never_received_leaves_the_authorization_cancelable_with_another_key(
    merchant: Merchant, processor_down: list[str]
) -> None:
    pi = _authorized(merchant)
    cancel = f"/v1/payment_intents/{pi['id']}/cancel"
    processor_down.append("void")
    refused = merchant.post(cancel, {}, headers={"Idempotency-Key": "void-down"})

    assert refused.status_code == 503 and refused.headers["Stripe-Should-Retry"] == "true"
    assert merchant.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_capture"

    processor_down.clear()
    canceled = merchant.post(cancel, {}, headers={"Idempotency-Key": "void-again"})
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    # The first key was freed, not kept with a 503: used again, it answers with what is true now.
    again = merchant.post(cancel, {}, headers={"Idempotency-Key": "void-down"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_a_refund_the_processor_never_received_is_answered_pending_and_sent_once_by_the_status_sync(
    merchant: Merchant, processor_down: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refund exists (and holds its amount) from txn 1 on: answering 503 "retry" would invite a second
    refund under a new key. It is answered ``pending``, like Stripe's, and the sync sends it."""
    pi = _authorized(merchant)
    captured = merchant.post(f"/v1/payment_intents/{pi['id']}/capture", {})
    assert captured.json()["status"] == "succeeded"
    processor_down.append("refund")
    refund = merchant.post("/v1/refunds", {"payment_intent": pi["id"]}, headers={"Idempotency-Key": "re-down"})

    assert refund.status_code == 200 and refund.json()["status"] == "pending", refund.text
    replay = merchant.post("/v1/refunds", {"payment_intent": pi["id"]}, headers={"Idempotency-Key": "re-down"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == refund.json()
    second = merchant.post("/v1/refunds", {"payment_intent": pi["id"]})
    assert second.status_code == 400 and second.json()["error"]["code"] == "charge_already_refunded"

    processor_down.clear()
    monkeypatch.setattr(clock, "offset", clock.offset + 120)
    merchant.server.call(merchant.server.gateway.status_sync.run_once())
    done = merchant.get(f"/v1/refunds/{refund.json()['id']}").json()
    assert done["status"] == "succeeded"
    assert len(merchant.server.gateway.sandbox.operations_of("refund", refund.json()["id"])) == 1
    charge = merchant.get(f"/v1/payment_intents/{pi['id']}", params={"expand[]": "latest_charge"}).json()
    assert charge["latest_charge"]["amount_refunded"] == 4000 and charge["latest_charge"]["refunded"] is True
    assert ledger_problems(merchant) == []
