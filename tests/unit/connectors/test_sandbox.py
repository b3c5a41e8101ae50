"""The in-process sandbox connector: outcomes from test cards / tokens, idempotency, state rules."""

from __future__ import annotations

import pytest

from paygate.connectors.base import (
    AuthorizeRequest,
    CaptureRequest,
    CardData,
    PaymentStatus,
    ProcessorCredentials,
    RefundRequest,
    RefundStatus,
    SyncRequest,
    VoidRequest,
)
from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable
from paygate.connectors.sandbox import SandboxConnector

pytestmark = pytest.mark.anyio
CREDS = ProcessorCredentials(account_id="sbx", base_url="")


def req(key: str, *, token: str | None = None, number: str | None = None, capture: bool = True) -> AuthorizeRequest:
    card = CardData(number=number, exp_month=1, exp_year=2035, cvc="123") if number else None
    return AuthorizeRequest(key, key, 1000, "usd", capture, CREDS, card=card, payment_method_token=token)


@pytest.mark.parametrize(
    ("token", "status", "decline"),
    [
        ("pm_card_visa", PaymentStatus.CAPTURED, None),
        ("pm_card_mastercard", PaymentStatus.CAPTURED, None),
        ("pm_card_amex", PaymentStatus.CAPTURED, None),
        ("pm_card_chargeDeclined", PaymentStatus.FAILED, "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", PaymentStatus.FAILED, "insufficient_funds"),
        ("pm_card_chargeDeclinedExpiredCard", PaymentStatus.FAILED, "expired_card"),
        ("pm_card_authenticationRequired", PaymentStatus.REQUIRES_ACTION, None),
    ],
)
async def test_tokens_decide_the_outcome(token: str, status: PaymentStatus, decline: str | None) -> None:
    result = await SandboxConnector().authorize(req("k1", token=token), None)
    assert result.status is status
    assert result.decline_code == decline


async def test_card_numbers_share_the_simulator_table() -> None:
    sandbox = SandboxConnector()
    ok = await sandbox.authorize(req("a", number="4242424242424242", capture=False), None)
    declined = await sandbox.authorize(req("b", number="4000000000000119"), None)
    assert ok.status is PaymentStatus.AUTHORIZED
    assert (declined.error_code, declined.retryable_elsewhere) == ("processing_error", True)


async def test_unknown_token_fails_without_recording() -> None:
    sandbox = SandboxConnector()
    result = await sandbox.authorize(req("a", token="pm_card_nope"), None)
    assert (result.status, result.error_code) == (PaymentStatus.FAILED, "resource_missing")
    assert sandbox.operations == []


async def test_same_idempotency_key_returns_the_same_result_and_records_once() -> None:
    sandbox = SandboxConnector()
    first = await sandbox.authorize(req("same", token="pm_card_visa"), None)
    second = await sandbox.authorize(req("same", token="pm_card_visa"), None)
    assert second is first
    assert len(sandbox.operations_of("authorize", "same")) == 1


async def test_capture_void_and_refund_follow_the_state_rules() -> None:
    sandbox = SandboxConnector()
    auth = await sandbox.authorize(req("a", token="pm_card_visa", capture=False), None)
    ref = auth.processor_reference
    assert ref is not None
    too_much = await sandbox.capture(CaptureRequest("c0", ref, 5000, "usd", CREDS), None)
    assert (too_much.status, too_much.error_code) == (PaymentStatus.AUTHORIZED, "amount_too_large")
    captured = await sandbox.capture(CaptureRequest("c1", ref, 800, "usd", CREDS), None)
    assert (captured.status, captured.amount_captured) == (PaymentStatus.CAPTURED, 800)
    late_void = await sandbox.void(VoidRequest("v1", ref, CREDS), None)
    assert late_void.error_code == "payment_intent_unexpected_state"
    r1 = await sandbox.refund(RefundRequest("r1", "r1", ref, 500, "usd", CREDS), None)
    r1_again = await sandbox.refund(RefundRequest("r1", "r1", ref, 500, "usd", CREDS), None)
    over = await sandbox.refund(RefundRequest("r2", "r2", ref, 301, "usd", CREDS), None)
    assert r1.status is RefundStatus.SUCCEEDED and r1_again is r1
    assert (over.status, over.failure_reason) == (RefundStatus.FAILED, "amount_too_large")


async def test_void_releases_an_authorization() -> None:
    sandbox = SandboxConnector()
    auth = await sandbox.authorize(req("a", token="pm_card_visa", capture=False), None)
    assert auth.processor_reference is not None
    voided = await sandbox.void(VoidRequest("v", auth.processor_reference, CREDS), None)
    assert voided.status is PaymentStatus.VOIDED


async def test_fault_cards_raise_infrastructure_errors() -> None:
    sandbox = SandboxConnector()
    with pytest.raises(ProcessorUnavailable):
        await sandbox.authorize(req("e", number="4000000000000507"), None)
    assert sandbox.operations == []
    with pytest.raises(OutcomeUnknown):
        await sandbox.authorize(req("t", number="4000000000005126", capture=False), None)
    with pytest.raises(OutcomeUnknown):
        await sandbox.authorize(req("t", number="4000000000005126", capture=False), None)
    found = await sandbox.sync(SyncRequest("t", CREDS), None)
    assert found.status is PaymentStatus.AUTHORIZED
    assert len(sandbox.operations_of("authorize", "t")) == 1


async def test_sync_of_unknown_key_reports_no_record() -> None:
    result = await SandboxConnector().sync(SyncRequest("missing", CREDS), None)
    assert (result.status, result.error_code) == (PaymentStatus.FAILED, "resource_missing")


async def test_three_d_secure_completes_through_complete_action() -> None:
    sandbox = SandboxConnector()
    pending = await sandbox.authorize(req("a", token="pm_card_authenticationRequired", capture=False), None)
    assert pending.next_action is not None and pending.processor_reference is not None
    done = sandbox.complete_action(pending.processor_reference, approve=True)
    assert done.status is PaymentStatus.AUTHORIZED


async def test_memory_is_bounded_to_the_most_recent_payments_and_operations() -> None:
    sandbox = SandboxConnector(retain_payments=50, max_operations=40)
    refs = []
    for i in range(300):
        result = await sandbox.authorize(req(f"k{i}", token="pm_card_visa", capture=False), None)
        refs.append(result.processor_reference)
        await sandbox.capture(
            CaptureRequest(f"k{i}-capture", result.processor_reference or "", 1000, "usd", CREDS), None
        )
    assert len(sandbox._payments) == len(sandbox._by_key) == 50
    assert len(sandbox._results) == 100  # an authorization and a capture result for each payment kept
    assert 30 <= len(sandbox.operations) <= 40
    assert sandbox.operations[-1].idempotency_key == "k299-capture"
    recent = await sandbox.sync(SyncRequest("k299", CREDS), None)
    assert recent.status is PaymentStatus.CAPTURED
    forgotten = await sandbox.sync(SyncRequest("k0", CREDS, processor_reference=refs[0]), None)
    assert forgotten.error_code == "resource_missing"
