"""An in-process processor: decides outcomes from test cards / tokens with no HTTP at all.

Use it wherever a real network round trip adds nothing (unit tests, the demo, benchmarks)::

    from paygate.connectors.sandbox import SandboxConnector
    sandbox = SandboxConnector()
    result = await sandbox.authorize(AuthorizeRequest(..., payment_method_token="pm_card_visa"), http=None)

``http`` is accepted for protocol compatibility and ignored (pass ``None`` or any client).

Contract (identical outcomes to the HTTP simulator, from :mod:`paygate.connectors.testcards`):

* Same ``(operation, idempotency_key)`` → the same stored result object; nothing is recorded twice.
* Declines are ``PaymentResult(status=FAILED, error_code, decline_code)``; ``processing_error`` is
  ``retryable_elsewhere=True``.
* Fault cards: ``error_before_accept`` raises :class:`ProcessorUnavailable` and records nothing; ``timeout`` and
  ``drop_response`` record the authorization, then raise :class:`OutcomeUnknown` on every attempt (as the
  simulator drops every delivery for that card) — :meth:`sync` returns the recorded result; ``slow`` approves
  after ``slow_seconds`` (default 0 here, so benchmarks stay fast).
* Capture / void / refund that the state forbids (wrong state, amount too large) do not raise: the result
  carries the payment's *current* status and ``error_code`` (``payment_intent_unexpected_state``,
  ``amount_too_large``); refunds answer ``RefundStatus.FAILED`` with ``failure_reason``.
* Unknown reference / unknown idempotency key: ``status=FAILED, error_code="resource_missing"`` — the
  processor has no record, so nothing was charged.
* ``operations`` lists accepted operations in order (what the simulator's ``/_sim/operations`` shows), the most
  recent ``max_operations`` of them (older ones are dropped in batches).
* Memory is bounded: the most recent ``retain_payments`` payments are kept with their stored results; an older
  payment is forgotten (a capture, refund or sync of it answers ``resource_missing``, as for an unknown one).
* ``requires_action`` payments wait for :meth:`complete_action` (the 3-D Secure challenge outcome).

State changes happen without awaiting, so asyncio tasks cannot interleave inside one operation; a
:class:`threading.Lock` additionally makes the object safe to share across event-loop threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from paygate.connectors import testcards
from paygate.connectors.base import (
    AuthorizeRequest,
    CaptureRequest,
    ConnectorClient,
    ConnectorEvent,
    InboundWebhook,
    NextAction,
    PaymentResult,
    PaymentStatus,
    RefundRequest,
    RefundResult,
    RefundStatus,
    SyncRequest,
    VoidRequest,
)
from paygate.connectors.errors import OutcomeUnknown, ProcessorUnavailable
from paygate.connectors.simulator import webhooks as native_webhooks

if TYPE_CHECKING:
    from paygate.kit.secret import Secret

__all__ = ["SandboxConnector", "SandboxOperation"]


@dataclass(frozen=True, slots=True)
class SandboxOperation:
    type: str  # authorize | capture | void | refund | complete_action
    idempotency_key: str
    reference: str
    amount: int
    currency: str
    outcome: str  # the resulting status value
    at: float


@dataclass(slots=True)
class _Payment:
    reference: str
    idempotency_key: str
    amount: int
    currency: str
    capture: bool
    status: PaymentStatus
    card: testcards.CardBehaviour
    amount_authorized: int = 0
    amount_captured: int = 0
    amount_refunded: int = 0
    fault: testcards.Fault | None = None
    refunds: list[str] = field(default_factory=list)
    result_keys: list[tuple[str, str]] = field(default_factory=list)  # stored results to forget with it


def _missing(message: str) -> PaymentResult:
    return PaymentResult(status=PaymentStatus.FAILED, error_code="resource_missing", message=message)


class SandboxConnector:
    """In-process connector; see the module docstring for the full contract."""

    name: ClassVar[str] = "sandbox"

    def __init__(
        self,
        *,
        slow_seconds: float = 0.0,
        action_url_template: str = "https://sandbox.paygate.test/3ds/{reference}",
        retain_payments: int = 20_000,
        max_operations: int = 10_000,
    ) -> None:
        if retain_payments < 1 or max_operations < 1:
            raise ValueError("retain_payments and max_operations must be positive")
        self.slow_seconds = slow_seconds
        self.action_url_template = action_url_template
        self.retain_payments = retain_payments
        self.max_operations = max_operations
        self.operations: list[SandboxOperation] = []
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], PaymentResult | RefundResult] = {}
        self._payments: dict[str, _Payment] = {}
        self._by_key: dict[str, str] = {}
        self._refund_amounts: dict[str, tuple[str, int]] = {}

    # ------------------------------------------------------------------ helpers
    def _record(self, kind: str, key: str, ref: str, amount: int, currency: str, outcome: str) -> None:
        self.operations.append(SandboxOperation(kind, key, ref, amount, currency, outcome, time.time()))
        if len(self.operations) > self.max_operations:  # drop the oldest quarter at once: amortized O(1)
            del self.operations[: len(self.operations) - self.max_operations * 3 // 4]

    def _store(self, p: _Payment, kind: str, key: str, result: PaymentResult | RefundResult) -> None:
        self._results[(kind, key)] = result
        p.result_keys.append((kind, key))

    def _remember(self, p: _Payment) -> None:
        """Keep ``p``; forget the oldest payment (and what hangs off it) beyond ``retain_payments``."""
        self._payments[p.reference] = p
        self._by_key[p.idempotency_key] = p.reference
        while len(self._payments) > self.retain_payments:
            old = self._payments.pop(next(iter(self._payments)))
            if self._by_key.get(old.idempotency_key) == old.reference:
                del self._by_key[old.idempotency_key]
            for result_key in old.result_keys:
                self._results.pop(result_key, None)
            for refund in old.refunds:
                self._refund_amounts.pop(refund, None)

    def _result(self, p: _Payment, *, error_code: str | None = None, message: str | None = None) -> PaymentResult:
        card = p.card
        failed = p.status is PaymentStatus.FAILED
        next_action = None
        if p.status is PaymentStatus.REQUIRES_ACTION:
            next_action = NextAction(redirect_url=self.action_url_template.format(reference=p.reference))
        return PaymentResult(
            status=p.status,
            processor_reference=p.reference,
            amount_authorized=p.amount_authorized,
            amount_captured=p.amount_captured,
            decline_code=card.decline_code if failed else None,
            error_code=error_code or (card.error_code if failed else None),
            message=message or (card.message if failed else None),
            retryable_elsewhere=card.retryable_elsewhere if failed else False,
            next_action=next_action,
            network_transaction_id=None,
            raw_status=p.status.value,
        )

    # ------------------------------------------------------------------ flows
    async def authorize(self, req: AuthorizeRequest, http: ConnectorClient | None = None) -> PaymentResult:
        card = testcards.resolve(
            number=req.card.number if req.card else None,
            token=req.payment_method_token,
            holder_name=req.card.holder_name if req.card else None,
        )
        if card is not None and card.fault is testcards.Fault.SLOW and self.slow_seconds > 0:
            await asyncio.sleep(self.slow_seconds)
        with self._lock:
            cached = self._results.get(("authorize", req.idempotency_key))
            if cached is not None:
                payment = self._payments[self._by_key[req.idempotency_key]]
                if payment.fault in (testcards.Fault.TIMEOUT, testcards.Fault.DROP_RESPONSE):
                    raise OutcomeUnknown("sandbox: response lost (fault card)")
                assert isinstance(cached, PaymentResult)
                return cached
            if card is None:
                return PaymentResult(
                    status=PaymentStatus.FAILED,
                    error_code="resource_missing",
                    message="No such payment method.",
                )
            if card.fault is testcards.Fault.ERROR_BEFORE_ACCEPT:
                raise ProcessorUnavailable("sandbox: 500 before acceptance (fault card)")
            if card.outcome is testcards.Outcome.DECLINE:
                status = PaymentStatus.FAILED
            elif card.outcome is testcards.Outcome.REQUIRES_ACTION:
                status = PaymentStatus.REQUIRES_ACTION
            else:
                status = PaymentStatus.CAPTURED if req.capture else PaymentStatus.AUTHORIZED
            ref = "sbx_" + uuid.uuid4().hex[:24]
            p = _Payment(ref, req.idempotency_key, req.amount, req.currency, req.capture, status, card)
            p.fault = card.fault
            if status in (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED):
                p.amount_authorized = req.amount
            if status is PaymentStatus.CAPTURED:
                p.amount_captured = req.amount
            self._remember(p)
            result = self._result(p)
            self._store(p, "authorize", req.idempotency_key, result)
            self._record("authorize", req.idempotency_key, ref, req.amount, req.currency, status.value)
            if p.fault in (testcards.Fault.TIMEOUT, testcards.Fault.DROP_RESPONSE):
                raise OutcomeUnknown("sandbox: response lost (fault card)")
            return result

    def complete_action(self, reference: str, *, approve: bool) -> PaymentResult:
        """Finish a 3-D Secure challenge: approve → authorized/captured, otherwise failed."""
        with self._lock:
            p = self._payments.get(reference)
            if p is None:
                return _missing("No such payment.")
            if p.status is not PaymentStatus.REQUIRES_ACTION:
                return self._result(p, error_code="payment_intent_unexpected_state")
            if approve:
                p.status = PaymentStatus.CAPTURED if p.capture else PaymentStatus.AUTHORIZED
                p.amount_authorized = p.amount
                p.amount_captured = p.amount if p.capture else 0
                result = self._result(p)
            else:
                p.status = PaymentStatus.FAILED
                result = PaymentResult(
                    status=PaymentStatus.FAILED,
                    processor_reference=p.reference,
                    error_code="card_declined",
                    decline_code="authentication_required",
                    message="The customer failed authentication.",
                    raw_status="failed",
                )
            self._store(p, "authorize", p.idempotency_key, result)
            self._record("complete_action", p.idempotency_key, p.reference, p.amount, p.currency, p.status)
            return result

    async def capture(self, req: CaptureRequest, http: ConnectorClient | None = None) -> PaymentResult:
        with self._lock:
            cached = self._results.get(("capture", req.idempotency_key))
            if isinstance(cached, PaymentResult):
                return cached
            p = self._payments.get(req.processor_reference)
            if p is None:
                return _missing("No such payment.")
            if p.status is not PaymentStatus.AUTHORIZED:
                return self._result(p, error_code="payment_intent_unexpected_state")
            if req.amount <= 0 or req.amount > p.amount_authorized:
                return self._result(p, error_code="amount_too_large", message="Capture exceeds authorization.")
            p.status = PaymentStatus.CAPTURED
            p.amount_captured = req.amount
            result = self._result(p)
            self._store(p, "capture", req.idempotency_key, result)
            self._record("capture", req.idempotency_key, p.reference, req.amount, p.currency, p.status)
            return result

    async def void(self, req: VoidRequest, http: ConnectorClient | None = None) -> PaymentResult:
        with self._lock:
            cached = self._results.get(("void", req.idempotency_key))
            if isinstance(cached, PaymentResult):
                return cached
            p = self._payments.get(req.processor_reference)
            if p is None:
                return _missing("No such payment.")
            if p.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.REQUIRES_ACTION):
                return self._result(p, error_code="payment_intent_unexpected_state")
            p.status = PaymentStatus.VOIDED
            result = self._result(p)
            self._store(p, "void", req.idempotency_key, result)
            self._record("void", req.idempotency_key, p.reference, p.amount_authorized, p.currency, p.status)
            return result

    async def refund(self, req: RefundRequest, http: ConnectorClient | None = None) -> RefundResult:
        with self._lock:
            cached = self._results.get(("refund", req.idempotency_key))
            if isinstance(cached, RefundResult):
                return cached
            p = self._payments.get(req.processor_reference)
            if p is None:
                return RefundResult(status=RefundStatus.FAILED, failure_reason="resource_missing")
            if p.status is not PaymentStatus.CAPTURED:
                return RefundResult(status=RefundStatus.FAILED, failure_reason="charge_not_captured")
            if req.amount <= 0 or p.amount_refunded + req.amount > p.amount_captured:
                return RefundResult(status=RefundStatus.FAILED, failure_reason="amount_too_large")
            p.amount_refunded += req.amount
            ref = "sbx_re_" + uuid.uuid4().hex[:20]
            p.refunds.append(ref)
            self._refund_amounts[ref] = (p.reference, req.amount)
            result = RefundResult(status=RefundStatus.SUCCEEDED, processor_reference=ref, raw_status="succeeded")
            self._store(p, "refund", req.idempotency_key, result)
            self._record("refund", req.idempotency_key, ref, req.amount, p.currency, "succeeded")
            return result

    async def sync(self, req: SyncRequest, http: ConnectorClient | None = None) -> PaymentResult:
        with self._lock:
            ref = req.processor_reference or self._by_key.get(req.idempotency_key)
            p = self._payments.get(ref) if ref else None
            if p is None:
                return _missing("No payment with this reference or idempotency key.")
            return self._result(p)

    # ------------------------------------------------------------------ webhooks (the native scheme)
    def verify_webhook(self, hook: InboundWebhook, secret: Secret) -> bool:
        """The sandbox sends no webhooks itself; it accepts the simulator's native signature scheme."""
        return native_webhooks.verify(hook, secret)

    def parse_webhook(self, hook: InboundWebhook) -> ConnectorEvent:
        return native_webhooks.parse(hook)

    # ------------------------------------------------------------------ test helpers
    def operations_of(self, kind: str, idempotency_key: str | None = None) -> list[SandboxOperation]:
        """Accepted operations of one type (optionally for one idempotency key)."""
        return [
            op
            for op in self.operations
            if op.type == kind and (idempotency_key is None or op.idempotency_key == idempotency_key)
        ]

    def reset(self) -> None:
        with self._lock:
            self.operations.clear()
            self._results.clear()
            self._payments.clear()
            self._by_key.clear()
            self._refund_amounts.clear()
