"""One suite, every HTTP connector: the same actions against the simulator running as a separate process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from _sim_support import ADYEN_HMAC_KEY, WEBHOOK_SECRET, Receiver, sim_get

from paygate.connectors.adyen import AdyenConnector
from paygate.connectors.base import (
    AuthorizeRequest,
    CaptureRequest,
    CardData,
    Connector,
    InboundWebhook,
    PaymentResult,
    PaymentStatus,
    ProcessorCredentials,
    RefundRequest,
    RefundStatus,
    SyncRequest,
    VoidRequest,
)
from paygate.connectors.client import ClientSettings, HttpConnectorClient
from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable
from paygate.connectors.simulator import SimulatorConnector
from paygate.connectors.stripe import StripeConnector
from paygate.kit.secret import Secret

pytestmark = pytest.mark.anyio


@dataclass
class Case:
    connector: Connector
    creds: ProcessorCredentials
    webhook_secret: Secret
    dialect: str


def _case(name: str, sim_url: str) -> Case:
    key = Secret("sk_test_sim")
    if name == "simulator":
        creds = ProcessorCredentials("acct_native", f"{sim_url}/native", api_key=key)
        return Case(SimulatorConnector(), creds, Secret(WEBHOOK_SECRET), "native")
    if name == "stripe":
        creds = ProcessorCredentials("acct_stripe", f"{sim_url}/stripe", api_key=key)
        return Case(StripeConnector(), creds, Secret(WEBHOOK_SECRET), "stripe")
    creds = ProcessorCredentials(
        "acct_adyen", f"{sim_url}/adyen/v71", api_key=key, merchant_account="PaygateSimMerchant"
    )
    return Case(AdyenConnector(), creds, Secret(ADYEN_HMAC_KEY), "adyen")


@pytest.fixture(params=["simulator", "stripe", "adyen"])
def case(request: pytest.FixtureRequest, sim_url: str) -> Case:
    return _case(request.param, sim_url)


@pytest.fixture
async def http() -> AsyncIterator[HttpConnectorClient]:
    settings = ClientSettings(read_timeout=2.0, max_attempts=2, backoff_base=0.02)
    async with HttpConnectorClient(settings) as client:
        yield client


def card(number: str, holder: str | None = None) -> CardData:
    return CardData(number=number, exp_month=12, exp_year=2034, cvc="123", holder_name=holder)


def authorize_req(
    case: Case,
    *,
    number: str = "4242424242424242",
    capture: bool = True,
    amount: int = 1000,
    key: str | None = None,
    token: str | None = None,
) -> AuthorizeRequest:
    attempt = key or f"att_{uuid.uuid4().hex}"
    return AuthorizeRequest(
        idempotency_key=attempt,
        attempt_id=attempt,
        amount=amount,
        currency="eur",
        capture=capture,
        credentials=case.creds,
        card=None if token else card(number),
        payment_method_token=token,
        return_url="https://merchant.example/return",
    )


async def settle(case: Case, http: HttpConnectorClient, result: PaymentResult) -> PaymentResult:
    """Adyen modifications are asynchronous (PENDING); ask the processor for the outcome."""
    if result.status is PaymentStatus.PENDING and result.processor_reference:
        sync = SyncRequest(idempotency_key="", credentials=case.creds, processor_reference=result.processor_reference)
        return await case.connector.sync(sync, http)
    return result


def operations(sim_url: str, **filters: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = sim_get(sim_url, "/_sim/operations", **filters)["data"]
    return rows


async def test_authorize_with_approving_card_captures_the_full_amount(case: Case, http: HttpConnectorClient) -> None:
    result = await settle(case, http, await case.connector.authorize(authorize_req(case), http))
    assert result.status is PaymentStatus.CAPTURED
    assert result.processor_reference
    assert result.amount_captured == 1000


async def test_authorize_with_test_token_is_authorized(case: Case, http: HttpConnectorClient) -> None:
    result = await case.connector.authorize(authorize_req(case, capture=False, token="pm_card_mastercard"), http)
    assert result.status is PaymentStatus.AUTHORIZED
    assert result.amount_authorized == 1000


@pytest.mark.parametrize(
    ("number", "error_code", "decline_code", "retryable"),
    [
        ("4000000000000002", "card_declined", "generic_decline", False),
        ("4000000000009995", "card_declined", "insufficient_funds", False),
        ("4000000000009987", "card_declined", "lost_card", False),
        ("4000000000009979", "card_declined", "stolen_card", False),
        ("4000000000000069", "expired_card", "expired_card", False),
        ("4000000000000127", "incorrect_cvc", "incorrect_cvc", False),
        ("4000000000000119", "processing_error", "processing_error", True),
    ],
)
async def test_declines_are_failed_results_with_stripe_codes(
    case: Case, http: HttpConnectorClient, number: str, error_code: str, decline_code: str, retryable: bool
) -> None:
    result = await case.connector.authorize(authorize_req(case, number=number), http)
    assert result.status is PaymentStatus.FAILED
    assert (result.error_code, result.decline_code) == (error_code, decline_code)
    assert result.retryable_elsewhere is retryable


async def test_partial_capture_of_an_authorization(case: Case, http: HttpConnectorClient) -> None:
    auth = await case.connector.authorize(authorize_req(case, capture=False), http)
    assert auth.status is PaymentStatus.AUTHORIZED
    assert auth.processor_reference is not None
    captured = await case.connector.capture(
        CaptureRequest(f"cap_{uuid.uuid4().hex}", auth.processor_reference, 600, "eur", case.creds), http
    )
    captured = await settle(case, http, captured)
    assert captured.status is PaymentStatus.CAPTURED
    assert captured.amount_captured == 600


async def test_void_releases_an_authorization_and_blocks_capture(case: Case, http: HttpConnectorClient) -> None:
    auth = await case.connector.authorize(authorize_req(case, capture=False), http)
    assert auth.processor_reference is not None
    voided = await settle(
        case,
        http,
        await case.connector.void(VoidRequest(f"void_{uuid.uuid4().hex}", auth.processor_reference, case.creds), http),
    )
    assert voided.status is PaymentStatus.VOIDED
    late = await case.connector.capture(
        CaptureRequest(f"cap_{uuid.uuid4().hex}", auth.processor_reference, 100, "eur", case.creds), http
    )
    assert late.status is PaymentStatus.VOIDED
    assert late.error_code is not None


async def test_two_partial_refunds_succeed_and_an_over_refund_is_rejected(
    sim_url: str, case: Case, http: HttpConnectorClient
) -> None:
    paid = await case.connector.authorize(authorize_req(case, amount=1000), http)
    ref = paid.processor_reference
    assert ref is not None

    def refund(amount: int) -> RefundRequest:
        rid = f"re_{uuid.uuid4().hex}"
        return RefundRequest(rid, rid, ref, amount, "eur", case.creds)

    first = await case.connector.refund(refund(300), http)
    second = await case.connector.refund(refund(500), http)
    over = await case.connector.refund(refund(300), http)
    assert first.status in (RefundStatus.SUCCEEDED, RefundStatus.PENDING)
    assert second.status in (RefundStatus.SUCCEEDED, RefundStatus.PENDING)
    assert first.processor_reference != second.processor_reference
    assert over.status is RefundStatus.FAILED
    refunded = [op["amount"] for op in operations(sim_url, type="refund", txn_id=ref)]
    assert refunded == [300, 500]


async def test_sync_finds_the_payment_by_reference_and_by_idempotency_key(
    case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, capture=False)
    auth = await case.connector.authorize(req, http)
    by_ref = await case.connector.sync(
        SyncRequest(req.idempotency_key, case.creds, processor_reference=auth.processor_reference), http
    )
    by_key = await case.connector.sync(SyncRequest(req.idempotency_key, case.creds), http)
    assert by_ref.status is by_key.status is PaymentStatus.AUTHORIZED
    assert by_ref.processor_reference == by_key.processor_reference == auth.processor_reference


async def test_sync_of_an_unknown_idempotency_key_reports_no_record(case: Case, http: HttpConnectorClient) -> None:
    result = await case.connector.sync(SyncRequest(f"never_{uuid.uuid4().hex}", case.creds), http)
    assert result.status is PaymentStatus.FAILED
    assert result.error_code == "resource_missing"


async def test_same_idempotency_key_twice_records_one_authorization(
    sim_url: str, case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, capture=False)
    first = await case.connector.authorize(req, http)
    concurrent = await asyncio.gather(*(case.connector.authorize(req, http) for _ in range(5)))
    assert {r.processor_reference for r in concurrent} == {first.processor_reference}
    assert len(operations(sim_url, type="authorize", idempotency_key=req.idempotency_key)) == 1


async def test_concurrent_first_requests_with_one_key_record_one_authorization(
    sim_url: str, case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, capture=False)
    results = await asyncio.gather(*(case.connector.authorize(req, http) for _ in range(8)))
    assert len({r.processor_reference for r in results}) == 1
    assert len(operations(sim_url, type="authorize", idempotency_key=req.idempotency_key)) == 1


async def test_500_before_acceptance_is_unavailable_and_records_nothing(
    sim_url: str, case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, number="4000000000000507")
    with pytest.raises(ProcessorUnavailable):
        await case.connector.authorize(req, http)
    assert operations(sim_url, idempotency_key=req.idempotency_key) == []


async def test_timeout_is_outcome_unknown_and_sync_finds_the_result(sim_url: str, case: Case) -> None:
    req = authorize_req(case, number="4000000000005126", capture=False)
    async with HttpConnectorClient(ClientSettings(read_timeout=0.5, max_attempts=1)) as http:
        with pytest.raises(OutcomeUnknown):
            await case.connector.authorize(req, http)
        found = await case.connector.sync(SyncRequest(req.idempotency_key, case.creds), http)
    assert found.status is PaymentStatus.AUTHORIZED
    assert len(operations(sim_url, type="authorize", idempotency_key=req.idempotency_key)) == 1


async def test_dropped_response_is_outcome_unknown_and_exactly_one_authorization_exists(
    sim_url: str, case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, number="4000000000000770", capture=False)
    with pytest.raises(OutcomeUnknown):
        await case.connector.authorize(req, http)  # the client retries once: both answers are dropped
    found = await case.connector.sync(SyncRequest(req.idempotency_key, case.creds), http)
    assert found.status is PaymentStatus.AUTHORIZED
    assert len(operations(sim_url, type="authorize", idempotency_key=req.idempotency_key)) == 1


async def test_slow_card_still_answers_with_the_authorization(case: Case, http: HttpConnectorClient) -> None:
    result = await case.connector.authorize(authorize_req(case, number="4000000000000259", capture=False), http)
    assert result.status is PaymentStatus.AUTHORIZED


async def test_three_d_secure_challenge_approval_authorizes_and_redirects(
    case: Case, http: HttpConnectorClient
) -> None:
    req = authorize_req(case, number="4000000000003220", capture=False)
    pending = await case.connector.authorize(req, http)
    assert pending.status is PaymentStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    url = pending.next_action.redirect_url
    async with httpx2.AsyncClient() as browser:
        page = await browser.get(url)
        assert "Approve" in page.text
        done = await browser.post(url, data={"result": "approve"})
    assert done.status_code == 303
    assert done.headers["location"].startswith("https://merchant.example/return?")
    after = await case.connector.sync(SyncRequest(req.idempotency_key, case.creds), http)
    assert after.status is PaymentStatus.AUTHORIZED


async def test_webhooks_arrive_signed_and_the_connector_verifies_and_parses_them(
    receiver: Receiver, case: Case, http: HttpConnectorClient
) -> None:
    auth = await case.connector.authorize(authorize_req(case, capture=False), http)
    ref = auth.processor_reference

    def mine(hook: object) -> bool:
        return ref is not None and ref.encode() in hook.body and hook.path == f"/hooks/{case.dialect}"  # type: ignore[attr-defined]

    hooks = await asyncio.to_thread(receiver.wait_for, mine)
    assert hooks, "no webhook arrived"
    hook = InboundWebhook(body=hooks[0].body, headers=hooks[0].headers, received_at=hooks[0].at)
    assert case.connector.verify_webhook(hook, case.webhook_secret)
    event = case.connector.parse_webhook(hook)
    assert event.kind == "payment"
    assert event.processor_reference == ref
    assert event.payment_status is PaymentStatus.AUTHORIZED
    tampered = InboundWebhook(
        body=hook.body.replace(b"1000", b"9000"), headers=hook.headers, received_at=hook.received_at
    )
    assert not case.connector.verify_webhook(tampered, case.webhook_secret)
