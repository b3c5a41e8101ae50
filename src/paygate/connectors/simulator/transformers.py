"""Pure translation between paygate's connector types and the simulator's native JSON dialect.

Native objects (see docs/simulator.md): a *payment* has ``id``, ``status`` (``requires_action`` | ``authorized`` |
``captured`` | ``voided`` | ``failed`` | ``pending``), amounts, ``decline_code`` / ``error_code`` / ``message`` /
``retryable`` on failure and ``next_action.redirect_url`` for 3-D Secure; a *refund* has ``id``, ``payment_id``,
``status`` (``succeeded`` | ``failed`` | ``pending``) and ``failure_reason``. Unknown statuses map to PENDING.
"""

from __future__ import annotations

from typing import Any

from paygate.connectors.base import (
    AuthorizeRequest,
    ConnectorEvent,
    NextAction,
    PaymentResult,
    PaymentStatus,
    RefundResult,
    RefundStatus,
)

__all__ = [
    "PAYMENT_STATUSES",
    "REFUND_STATUSES",
    "authorize_body",
    "event_from_webhook",
    "payment_result",
    "refund_result",
]

PAYMENT_STATUSES: dict[str, PaymentStatus] = {
    "authorized": PaymentStatus.AUTHORIZED,
    "captured": PaymentStatus.CAPTURED,
    "voided": PaymentStatus.VOIDED,
    "failed": PaymentStatus.FAILED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "pending": PaymentStatus.PENDING,
}
REFUND_STATUSES: dict[str, RefundStatus] = {
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "pending": RefundStatus.PENDING,
}
_EVENT_KINDS = {"payment": "payment", "refund": "refund", "dispute": "dispute"}


def authorize_body(req: AuthorizeRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": req.amount,
        "currency": req.currency,
        "capture": req.capture,
        "reference": req.attempt_id,
        "metadata": {**req.metadata, "paygate_idempotency_key": req.idempotency_key},
    }
    if req.card is not None:
        body["card"] = {
            "number": req.card.number,
            "exp_month": req.card.exp_month,
            "exp_year": req.card.exp_year,
            "cvc": req.card.cvc,
            "holder_name": req.card.holder_name,
        }
    if req.payment_method_token is not None:
        body["payment_method"] = req.payment_method_token
    if req.return_url is not None:
        body["return_url"] = req.return_url
    if req.description is not None:
        body["description"] = req.description
    return body


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def payment_result(obj: dict[str, Any], *, error_code: str | None = None) -> PaymentResult:
    """Map a native payment object. ``error_code`` overrides (used when an operation was refused)."""
    raw = _str(obj.get("status"))
    status = PAYMENT_STATUSES.get(raw or "", PaymentStatus.PENDING)
    action = obj.get("next_action")
    next_action = None
    if isinstance(action, dict) and isinstance(action.get("redirect_url"), str):
        next_action = NextAction(redirect_url=action["redirect_url"])
    failed = status is PaymentStatus.FAILED
    return PaymentResult(
        status=status,
        processor_reference=_str(obj.get("id")),
        amount_authorized=_int(obj.get("amount_authorized")),
        amount_captured=_int(obj.get("amount_captured")),
        decline_code=_str(obj.get("decline_code")) if failed else None,
        error_code=error_code or (_str(obj.get("error_code")) if failed else None),
        message=_str(obj.get("message")) if failed or error_code else None,
        retryable_elsewhere=bool(obj.get("retryable")) if failed else False,
        next_action=next_action,
        network_transaction_id=_str(obj.get("network_transaction_id")),
        raw_status=raw,
    )


def refund_result(obj: dict[str, Any]) -> RefundResult:
    raw = _str(obj.get("status"))
    return RefundResult(
        status=REFUND_STATUSES.get(raw or "", RefundStatus.PENDING),
        processor_reference=_str(obj.get("id")),
        failure_reason=_str(obj.get("failure_reason")),
        raw_status=raw,
    )


def event_from_webhook(body: dict[str, Any]) -> ConnectorEvent:
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    assert isinstance(data, dict)
    raw_type = _str(body.get("type")) or ""
    kind = _EVENT_KINDS.get(_str(data.get("object")) or raw_type.partition(".")[0], "payment")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    payment_status = refund_status = None
    if kind == "payment":
        payment_status = PAYMENT_STATUSES.get(_str(data.get("status")) or "", PaymentStatus.PENDING)
    elif kind == "refund":
        refund_status = REFUND_STATUSES.get(_str(data.get("status")) or "", RefundStatus.PENDING)
    reference = _str(data.get("payment_id")) if kind == "dispute" else _str(data.get("id"))
    return ConnectorEvent(
        event_id=_str(body.get("id")) or "",
        kind=kind,
        processor_reference=reference,
        idempotency_key=_str(metadata.get("paygate_idempotency_key")) or _str(data.get("idempotency_key")),
        payment_status=payment_status,
        refund_status=refund_status,
        amount=_int(data.get("amount")),
        currency=_str(data.get("currency")),
        occurred_at=_int(body.get("created")),
        raw_type=raw_type,
    )
