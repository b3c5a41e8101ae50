"""Applying processor outcomes to a payment: the "txn 2" half of every processor call.

Each ``apply_*`` function runs inside the caller's write transaction with the intent and attempt rows locked,
and is used both by API requests (the synchronous answer) and by the status-sync worker (a later answer). The
functions are monotonic: an outcome for an attempt that is no longer the intent's current one, or for a state the
intent already left, changes nothing (ARCHITECTURE.md rule 6). Each state change writes its ledger journal and
outbox events in the same transaction (rules 7 and 8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import PaymentResult, PaymentStatus
from paygate.connectors.errors import ConnectorError, OutcomeUnknown, ProcessorUnavailable
from paygate.db.pgbatch import RowChanged
from paygate.events import service as events
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import ApiError, CardDeclined, InvalidRequest, ProcessorTemporarilyUnavailable
from paygate.ledger import service as ledger
from paygate.merchants.context import AuthContext
from paygate.payments import repository as repo
from paygate.payments.model import Outcome, Status, apply_outcome
from paygate.payments.schemas import charge_object, intent_object

__all__ = [
    "SYNC_DELAY_SECONDS",
    "Applied",
    "apply_authorization",
    "apply_capture",
    "apply_void",
    "current_state",
    "decline_error",
]

SYNC_DELAY_SECONDS = 2  # first status-sync of an unknown outcome; the worker backs off from there


@dataclass
class Applied:
    intent: dict[str, Any]
    attempt: dict[str, Any]
    error: ApiError | None = None  # what the API caller should see (declines), if anything


def _to_outcome(result: PaymentResult | ConnectorError) -> Outcome:
    if isinstance(result, OutcomeUnknown):
        return Outcome.UNKNOWN
    if isinstance(result, ConnectorError):
        return Outcome.DECLINED  # ProcessorUnavailable: provably nothing happened → this attempt failed
    return {
        PaymentStatus.CAPTURED: Outcome.CAPTURED,
        PaymentStatus.AUTHORIZED: Outcome.AUTHORIZED,
        PaymentStatus.FAILED: Outcome.DECLINED,
        PaymentStatus.REQUIRES_ACTION: Outcome.REQUIRES_ACTION,
        PaymentStatus.VOIDED: Outcome.DECLINED,
        PaymentStatus.PENDING: Outcome.UNKNOWN,
    }[result.status]


def decline_error(intent: dict[str, Any], attempt: dict[str, Any]) -> CardDeclined:
    """The 402 ``card_error`` Stripe returns for a failed confirmation, rebuilt from the stored attempt."""
    return CardDeclined(
        attempt["failure_message"] or "Your card was declined.",
        code=attempt["failure_code"] or "card_declined",
        decline_code=attempt["decline_code"],
        extra={
            "charge": attempt["id"],
            "payment_intent": intent_object(intent),
            "payment_method": {"id": attempt["payment_method"], "object": "payment_method", "type": "card"},
        },
    )


async def apply_authorization(
    conn: AsyncConnection,
    ctx: AuthContext,
    intent: dict[str, Any],
    attempt: dict[str, Any],
    result: PaymentResult | ConnectorError,
    *,
    error_on_requires_action: bool = False,
    version: str | None = None,
) -> Applied:
    """Apply the processor's answer to an authorization attempt.

    With ``version`` (PostgreSQL) the rows were not read locked: they are as the transaction with that row
    version wrote them, and both updates are guarded by it, so nothing is written (``RowChanged`` is raised where
    the writes are sent) unless both rows are still that version; the caller then retries on locked rows."""
    now = clock.now()
    if attempt["status"] not in ("pending", "unknown") or intent["latest_charge"] != attempt["id"]:
        if version is not None:
            raise RowChanged("the attempt given as current is not")  # decide only on rows read locked
        return current_state(intent, attempt)  # already applied (duplicate / late answer)
    outcome = _to_outcome(result)
    target = apply_outcome(intent["status"], outcome, capture_method=intent["capture_method"])
    ref = result.processor_reference if isinstance(result, PaymentResult) else None
    a_vals: dict[str, Any] = {"updated": now}
    if ref:
        a_vals["processor_reference"] = ref
    i_vals: dict[str, Any] = {"updated": now, "pending_op": None}
    if ref:
        i_vals["processor_reference"] = ref
    emitted: list[tuple[str, str]] = []  # (event type, "intent" | "charge")

    if outcome is Outcome.REQUIRES_ACTION and error_on_requires_action:
        outcome, target = Outcome.DECLINED, Status.REQUIRES_PAYMENT_METHOD
        result = PaymentResult(
            status=PaymentStatus.FAILED,
            error_code="authentication_required",
            decline_code="authentication_required",
            message="Your card was declined. This transaction requires authentication.",
        )

    if outcome is Outcome.UNKNOWN or target is None:
        # Keep processing; the status-sync job asks the processor (by our idempotency key) until it knows.
        a_vals.update(
            status="unknown" if isinstance(result, ConnectorError) else "pending", next_sync_at=now + SYNC_DELAY_SECONDS
        )
        if target is None and outcome is not Outcome.UNKNOWN:
            a_vals["status"] = attempt["status"]
    elif outcome is Outcome.CAPTURED:
        amount = (result.amount_captured if isinstance(result, PaymentResult) else None) or attempt["amount"]
        a_vals.update(status="captured", amount_captured=amount, next_sync_at=None)
        i_vals.update(status=Status.SUCCEEDED, amount_received=amount, amount_capturable=0, next_action=None)
        await ledger.post_capture(
            conn,
            ctx,
            intent_id=intent["id"],
            attempt_id=attempt["id"],
            processor=attempt["processor"],
            amount=amount,
            currency=attempt["currency"],
        )
        emitted = [("charge.succeeded", "charge"), ("payment_intent.succeeded", "intent")]
    elif outcome is Outcome.AUTHORIZED:
        a_vals.update(status="authorized", next_sync_at=None)
        if target is Status.REQUIRES_CAPTURE:
            i_vals.update(status=target, amount_capturable=attempt["amount"], next_action=None)
            emitted = [("charge.succeeded", "charge"), ("payment_intent.amount_capturable_updated", "intent")]
        else:  # automatic capture still to come from the processor: keep processing, sync will see it
            a_vals["next_sync_at"] = now + SYNC_DELAY_SECONDS
    elif outcome is Outcome.REQUIRES_ACTION:
        assert isinstance(result, PaymentResult)
        url = result.next_action.redirect_url if result.next_action else None
        a_vals.update(status="requires_action")
        i_vals.update(
            status=target,
            next_action=jsonx.dumps(
                {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": intent["return_url"]}}
            ),
        )
        emitted = [("payment_intent.requires_action", "intent")]
    else:  # DECLINED (including ProcessorUnavailable: nothing happened at the processor)
        if isinstance(result, ProcessorUnavailable):
            code, decline, message = "processing_error", None, "An error occurred while processing your card."
        else:
            assert isinstance(result, PaymentResult)
            code = result.error_code or "card_declined"
            decline = result.decline_code or ("generic_decline" if code == "card_declined" else None)
            message = result.message or "Your card was declined."
        a_vals.update(
            status="failed", failure_code=code, decline_code=decline, failure_message=message, next_sync_at=None
        )
        lpe = {
            "type": "card_error",
            "code": code,
            "decline_code": decline,
            "message": message,
            "charge": attempt["id"],
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "payment_method": {"id": attempt["payment_method"], "object": "payment_method", "type": "card"},
        }
        if decline is None:
            del lpe["decline_code"]
        i_vals.update(status=target, last_payment_error=jsonx.dumps(lpe), payment_method=None, next_action=None)
        emitted = [("charge.failed", "charge"), ("payment_intent.payment_failed", "intent")]

    intent, attempt = await _write(conn, intent, attempt, i_vals, a_vals, version)
    await _emit(conn, ctx, intent, attempt, emitted)
    if attempt["status"] == "failed":
        return Applied(intent, attempt, decline_error(intent, attempt))
    return Applied(intent, attempt)


async def apply_capture(
    conn: AsyncConnection,
    ctx: AuthContext,
    intent: dict[str, Any],
    attempt: dict[str, Any],
    amount: int,
    result: PaymentResult | ConnectorError,
    *,
    version: str | None = None,
) -> Applied:
    """Apply the processor's answer to a capture of ``amount``. ``version``: as for :func:`apply_authorization`
    (both rows are then written in every case, so that both are checked)."""
    now = clock.now()
    if intent["pending_op"] != "capture" or attempt["status"] != "authorized":
        if version is not None:
            raise RowChanged("the capture given as pending is not")  # decide only on rows read locked
        return current_state(intent, attempt)
    if isinstance(result, ProcessorUnavailable):
        intent, attempt = await _write(conn, intent, attempt, _released(now), {}, version)
        return Applied(intent, attempt, ProcessorTemporarilyUnavailable())
    if isinstance(result, ConnectorError) or result.status in (PaymentStatus.PENDING, PaymentStatus.AUTHORIZED):
        # Unknown: the capture may have happened. Block other operations until sync knows.
        intent, attempt = await _write(
            conn, intent, attempt, {"status": Status.PROCESSING, "updated": now},
            {"next_sync_at": now + SYNC_DELAY_SECONDS, "updated": now}, version,
        )  # fmt: skip
        return Applied(intent, attempt)
    if result.status is PaymentStatus.CAPTURED:
        captured = result.amount_captured or amount
        intent, attempt = await _write(
            conn,
            intent,
            attempt,
            {
                "status": Status.SUCCEEDED,
                "amount_received": captured,
                "amount_capturable": 0,
                "pending_op": None,
                "updated": now,
            },
            {"status": "captured", "amount_captured": captured, "next_sync_at": None, "updated": now},
            version,
        )
        await ledger.post_capture(
            conn,
            ctx,
            intent_id=intent["id"],
            attempt_id=attempt["id"],
            processor=attempt["processor"],
            amount=captured,
            currency=attempt["currency"],
        )
        await _emit(conn, ctx, intent, attempt, [("charge.captured", "charge"), ("payment_intent.succeeded", "intent")])
        return Applied(intent, attempt)
    # FAILED / VOIDED: the processor refused the capture; the authorization stands as it was.
    intent, attempt = await _write(conn, intent, attempt, _released(now), {}, version)
    return Applied(
        intent,
        attempt,
        InvalidRequest(
            result.message or "The processor refused to capture this payment.",
            code=result.error_code or "capture_failed",
        ),
    )


async def apply_void(
    conn: AsyncConnection,
    ctx: AuthContext,
    intent: dict[str, Any],
    attempt: dict[str, Any],
    reason: str | None,
    result: PaymentResult | ConnectorError,
    *,
    version: str | None = None,
) -> Applied:
    """Apply the processor's answer to voiding an authorization (cancel from requires_capture). ``version``: as
    for :func:`apply_capture`."""
    now = clock.now()
    if intent["pending_op"] != "void":
        if version is not None:
            raise RowChanged("the void given as pending is not")  # decide only on rows read locked
        return current_state(intent, attempt)
    if isinstance(result, ProcessorUnavailable):
        intent, attempt = await _write(conn, intent, attempt, _released(now), {}, version)
        return Applied(intent, attempt, ProcessorTemporarilyUnavailable())
    if isinstance(result, ConnectorError) or result.status is PaymentStatus.PENDING:
        intent, attempt = await _write(
            conn, intent, attempt, {"status": Status.PROCESSING, "updated": now},
            {"next_sync_at": now + SYNC_DELAY_SECONDS, "updated": now}, version,
        )  # fmt: skip
        return Applied(intent, attempt)
    if result.status is PaymentStatus.VOIDED:
        intent, attempt = await _write(
            conn,
            intent,
            attempt,
            {
                "status": Status.CANCELED,
                "canceled_at": now,
                "cancellation_reason": reason or "requested_by_customer",
                "amount_capturable": 0,
                "pending_op": None,
                "updated": now,
            },
            {"status": "voided", "next_sync_at": None, "updated": now},
            version,
        )
        await _emit(conn, ctx, intent, attempt, [("payment_intent.canceled", "intent")])
        return Applied(intent, attempt)
    intent, attempt = await _write(conn, intent, attempt, _released(now), {}, version)
    return Applied(
        intent,
        attempt,
        InvalidRequest(
            result.message or "The processor refused to void this payment.", code=result.error_code or "void_failed"
        ),
    )


def _released(now: int) -> dict[str, Any]:
    """The intent's values when a capture or void did not happen: the authorization stands, unlocked."""
    return {"pending_op": None, "status": Status.REQUIRES_CAPTURE, "updated": now}


async def _write(
    conn: AsyncConnection,
    intent: dict[str, Any],
    attempt: dict[str, Any],
    i_vals: dict[str, Any],
    a_vals: dict[str, Any],
    version: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the intent, then the attempt (the order every locked path locks them in). With ``version`` both
    are guarded writes and both are written — the attempt at least its ``updated`` — so that the answer is
    applied only if neither row changed; without, an empty ``a_vals`` leaves the attempt alone."""
    intent = await repo.update_intent(conn, intent, i_vals, version=version)
    if a_vals or version is not None:
        attempt = await repo.update_attempt(conn, attempt, a_vals or {"updated": i_vals["updated"]}, version=version)
    return intent, attempt


def current_state(intent: dict[str, Any], attempt: dict[str, Any]) -> Applied:
    """The answer for a request whose outcome was already applied: replay what the state says."""
    if attempt["status"] == "failed" and intent["latest_charge"] == attempt["id"]:
        return Applied(intent, attempt, decline_error(intent, attempt))
    return Applied(intent, attempt)


async def _emit(
    conn: AsyncConnection,
    ctx: AuthContext,
    intent: dict[str, Any],
    attempt: dict[str, Any],
    items: list[tuple[str, str]],
) -> None:
    if not items:
        return
    pi_obj = intent_object(intent)
    ch_obj = charge_object(attempt, intent) if any(kind == "charge" for _, kind in items) else None
    await events.emit_many(conn, ctx, [(t, pi_obj if k == "intent" else ch_obj or {}) for t, k in items])
