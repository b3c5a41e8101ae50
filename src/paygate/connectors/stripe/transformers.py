"""Pure translation between paygate's connector types and Stripe's PaymentIntent / Refund / Event objects.

Status map (anything else → PENDING): ``requires_capture`` → AUTHORIZED, ``succeeded`` → CAPTURED,
``canceled`` → VOIDED, ``requires_action`` → REQUIRES_ACTION, ``requires_payment_method`` with a
``last_payment_error`` → FAILED (without one it was never attempted → PENDING), ``processing`` /
``requires_confirmation`` → PENDING. Decline data comes from ``last_payment_error`` (``code`` → error_code,
``decline_code`` → decline_code); ``processing_error`` and issuer-unavailable declines are retryable elsewhere.
"""

from __future__ import annotations

from typing import Any

from paygate.connectors.base import (
    AuthorizeRequest,
    ConnectorEvent,
    NextAction,
    PaymentResult,
    PaymentStatus,
    RefundRequest,
    RefundResult,
    RefundStatus,
)

__all__ = [
    "IDEMPOTENCY_METADATA",
    "authorize_params",
    "event_from_webhook",
    "intent_result",
    "refund_params",
    "refund_result",
]

IDEMPOTENCY_METADATA = "paygate_idempotency_key"
_STATUSES = {
    "requires_capture": PaymentStatus.AUTHORIZED,
    "succeeded": PaymentStatus.CAPTURED,
    "canceled": PaymentStatus.VOIDED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PENDING,
    "requires_confirmation": PaymentStatus.PENDING,
}
_REFUND_STATUSES = {
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
}
RETRYABLE_DECLINES = frozenset({"processing_error", "issuer_not_available", "try_again_later", "reenter_transaction"})
_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _i(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def authorize_params(req: AuthorizeRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "amount": req.amount,
        "currency": req.currency.lower(),
        "confirm": True,
        "capture_method": "automatic" if req.capture else "manual",
        "return_url": req.return_url,
        "description": req.description,
        "metadata": {
            **req.metadata,
            IDEMPOTENCY_METADATA: req.idempotency_key,
            "paygate_attempt_id": req.attempt_id,
        },
        "payment_method_types": None,
    }
    if req.card is not None:
        card: dict[str, Any] = {
            "number": req.card.number,
            "exp_month": req.card.exp_month,
            "exp_year": req.card.exp_year,
            "cvc": req.card.cvc,
        }
        params["payment_method_data"] = {
            "type": "card",
            "card": card,
            "billing_details": {"name": req.card.holder_name},
        }
    elif req.payment_method_token is not None:
        params["payment_method"] = req.payment_method_token
    return params


def refund_params(req: RefundRequest) -> dict[str, Any]:
    return {
        "payment_intent": req.processor_reference,
        "amount": req.amount,
        "reason": req.reason if req.reason in _REFUND_REASONS else None,
        "metadata": {IDEMPOTENCY_METADATA: req.idempotency_key, "paygate_refund_id": req.refund_id},
    }


def payment_status(pi: dict[str, Any]) -> PaymentStatus:
    raw = _s(pi.get("status")) or ""
    if raw == "requires_payment_method":
        return PaymentStatus.FAILED if isinstance(pi.get("last_payment_error"), dict) else PaymentStatus.PENDING
    return _STATUSES.get(raw, PaymentStatus.PENDING)


def intent_result(pi: dict[str, Any], *, error_code: str | None = None, message: str | None = None) -> PaymentResult:
    status = payment_status(pi)
    err = pi.get("last_payment_error") if isinstance(pi.get("last_payment_error"), dict) else {}
    assert isinstance(err, dict)
    failed = status is PaymentStatus.FAILED
    decline = _s(err.get("decline_code")) if failed else None
    code = _s(err.get("code")) if failed else None
    action = pi.get("next_action") if isinstance(pi.get("next_action"), dict) else {}
    assert isinstance(action, dict)
    redirect = action.get("redirect_to_url") if isinstance(action.get("redirect_to_url"), dict) else {}
    assert isinstance(redirect, dict)
    next_action = NextAction(redirect_url=redirect["url"]) if isinstance(redirect.get("url"), str) else None
    amount = _i(pi.get("amount"))
    captured = _i(pi.get("amount_received")) or 0
    if status is PaymentStatus.AUTHORIZED:
        authorized = _i(pi.get("amount_capturable"))
    elif status is PaymentStatus.CAPTURED:
        authorized = amount
    else:
        authorized = 0
    return PaymentResult(
        status=status,
        processor_reference=_s(pi.get("id")),
        amount_authorized=authorized,
        amount_captured=captured,
        decline_code=decline,
        error_code=error_code or code,
        message=message or (_s(err.get("message")) if failed else None),
        retryable_elsewhere=failed and ((decline in RETRYABLE_DECLINES) or code == "processing_error"),
        next_action=next_action if status is PaymentStatus.REQUIRES_ACTION else None,
        raw_status=_s(pi.get("status")),
    )


def refund_result(obj: dict[str, Any]) -> RefundResult:
    raw = _s(obj.get("status"))
    return RefundResult(
        status=_REFUND_STATUSES.get(raw or "", RefundStatus.PENDING),
        processor_reference=_s(obj.get("id")),
        failure_reason=_s(obj.get("failure_reason")),
        raw_status=raw,
    )


def _metadata_key(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return _s(metadata.get(IDEMPOTENCY_METADATA)) if isinstance(metadata, dict) else None


def event_from_webhook(event: dict[str, Any]) -> ConnectorEvent:
    """Map a Stripe event. ``processor_reference`` is the PaymentIntent id for payment and dispute events and the
    refund id for refund events (``charge.refunded``: its newest refund)."""
    raw_type = _s(event.get("type")) or ""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    obj = data.get("object") if isinstance(data.get("object"), dict) else {}
    assert isinstance(obj, dict)
    request = event.get("request") if isinstance(event.get("request"), dict) else {}
    assert isinstance(request, dict)
    common: dict[str, Any] = {
        "event_id": _s(event.get("id")) or "",
        "occurred_at": _i(event.get("created")),
        "raw_type": raw_type,
        "currency": _s(obj.get("currency")),
    }
    if raw_type.startswith("payment_intent."):
        return ConnectorEvent(
            kind="payment",
            processor_reference=_s(obj.get("id")),
            idempotency_key=_metadata_key(obj) or _s(request.get("idempotency_key")),
            payment_status=payment_status(obj),
            amount=_i(obj.get("amount")),
            **common,
        )
    if raw_type.startswith("refund."):
        return ConnectorEvent(
            kind="refund",
            processor_reference=_s(obj.get("id")),
            idempotency_key=_metadata_key(obj),
            refund_status=_REFUND_STATUSES.get(_s(obj.get("status")) or "", RefundStatus.PENDING),
            amount=_i(obj.get("amount")),
            **common,
        )
    if raw_type == "charge.refunded":
        refunds = obj.get("refunds") if isinstance(obj.get("refunds"), dict) else {}
        assert isinstance(refunds, dict)
        items = refunds.get("data") if isinstance(refunds.get("data"), list) else []
        assert isinstance(items, list)
        newest = items[0] if items and isinstance(items[0], dict) else {}
        return ConnectorEvent(
            kind="refund",
            processor_reference=_s(newest.get("id")),
            idempotency_key=_metadata_key(newest),
            refund_status=_REFUND_STATUSES.get(_s(newest.get("status")) or "", RefundStatus.PENDING)
            if newest
            else None,
            amount=_i(newest.get("amount")),
            **common,
        )
    if raw_type.startswith("charge.dispute."):
        return ConnectorEvent(
            kind="dispute",
            processor_reference=_s(obj.get("payment_intent")),
            idempotency_key=None,
            amount=_i(obj.get("amount")),
            **common,
        )
    return ConnectorEvent(kind="payment", processor_reference=_s(obj.get("id")), idempotency_key=None, **common)
