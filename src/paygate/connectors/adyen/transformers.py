"""Pure translation between paygate's connector types and Adyen Checkout objects and notifications.

``resultCode``: Authorised → CAPTURED when paygate asked for capture (Adyen captures automatically), otherwise
AUTHORIZED; Refused / Error / Cancelled → FAILED; RedirectShopper / ChallengeShopper / IdentifyShopper →
REQUIRES_ACTION; anything else (Received, Pending, …) → PENDING. ``refusalReasonCode`` is translated to Stripe's
vocabulary (``2`` generic_decline, ``12`` insufficient_funds, ``5`` lost/stolen/pickup by raw reason, ``6``
expired_card, ``24`` incorrect_cvc, ``4``/``9`` processing errors that another processor may accept …).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paygate.connectors.base import (
    AuthorizeRequest,
    ConnectorEvent,
    NextAction,
    PaymentResult,
    PaymentStatus,
    RefundStatus,
)

__all__ = [
    "DEFAULT_RETURN_URL",
    "authorize_body",
    "decline_for",
    "event_from_item",
    "payment_result",
    "status_result",
]

DEFAULT_RETURN_URL = "https://paygate.invalid/return"
_ACTION_CODES = frozenset({"RedirectShopper", "ChallengeShopper", "IdentifyShopper"})
# refusalReasonCode → (error_code, decline_code, retryable elsewhere)
_REFUSALS: dict[str, tuple[str, str, bool]] = {
    "2": ("card_declined", "generic_decline", False),
    "3": ("card_declined", "call_issuer", False),
    "4": ("processing_error", "processing_error", True),
    "6": ("expired_card", "expired_card", False),
    "7": ("card_declined", "invalid_amount", False),
    "8": ("incorrect_number", "incorrect_number", False),
    "9": ("processing_error", "issuer_not_available", True),
    "10": ("card_declined", "card_not_supported", False),
    "11": ("card_declined", "authentication_required", False),
    "12": ("card_declined", "insufficient_funds", False),
    "14": ("card_declined", "fraudulent", False),
    "20": ("card_declined", "fraudulent", False),
    "22": ("card_declined", "fraudulent", False),
    "24": ("incorrect_cvc", "incorrect_cvc", False),
    "25": ("card_declined", "restricted_card", False),
    "28": ("card_declined", "withdrawal_count_limit_exceeded", False),
    "29": ("card_declined", "card_velocity_exceeded", False),
    "31": ("card_declined", "fraudulent", False),
}
_PAYMENT_STATES = {
    "authorized": PaymentStatus.AUTHORIZED,
    "captured": PaymentStatus.CAPTURED,
    "voided": PaymentStatus.VOIDED,
    "failed": PaymentStatus.FAILED,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _i(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def authorize_body(req: AuthorizeRequest, merchant_account: str | None) -> dict[str, Any]:
    method: dict[str, Any]
    if req.card is not None:
        method = {
            "type": "scheme",
            "number": req.card.number,
            "expiryMonth": f"{req.card.exp_month:02d}",
            "expiryYear": str(req.card.exp_year),
            "cvc": req.card.cvc,
            "holderName": req.card.holder_name,
        }
        method = {k: v for k, v in method.items() if v is not None}
    else:
        method = {"type": "scheme", "storedPaymentMethodId": req.payment_method_token}
    body: dict[str, Any] = {
        "amount": {"value": req.amount, "currency": req.currency.upper()},
        "reference": req.attempt_id,
        "merchantAccount": merchant_account,
        "paymentMethod": method,
        "returnUrl": req.return_url or DEFAULT_RETURN_URL,
        "metadata": {**req.metadata, "paygate_idempotency_key": req.idempotency_key},
    }
    if not req.capture:
        body["additionalData"] = {"manualCapture": "true"}
    return body


def decline_for(code: str | None, raw: str | None) -> tuple[str, str, bool]:
    if code == "5":
        if raw and raw.startswith("41"):
            return "card_declined", "lost_card", False
        if raw and raw.startswith("43"):
            return "card_declined", "stolen_card", False
        return "card_declined", "pickup_card", False
    return _REFUSALS.get(code or "", ("card_declined", "generic_decline", False))


def payment_result(body: dict[str, Any], *, capture: bool) -> PaymentResult:
    result_code = _s(body.get("resultCode")) or ""
    reference = _s(body.get("pspReference"))
    amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
    assert isinstance(amount, dict)
    value = _i(amount.get("value"))
    if result_code == "Authorised":
        status = PaymentStatus.CAPTURED if capture else PaymentStatus.AUTHORIZED
        return PaymentResult(
            status=status,
            processor_reference=reference,
            amount_authorized=value,
            amount_captured=value if capture else 0,
            raw_status=result_code,
        )
    if result_code in ("Refused", "Error", "Cancelled"):
        extra = body.get("additionalData") if isinstance(body.get("additionalData"), dict) else {}
        assert isinstance(extra, dict)
        error_code, decline_code, retryable = decline_for(
            _s(body.get("refusalReasonCode")), _s(extra.get("refusalReasonRaw"))
        )
        if result_code == "Error" and not body.get("refusalReasonCode"):
            error_code, decline_code, retryable = "processing_error", "processing_error", True
        return PaymentResult(
            status=PaymentStatus.FAILED,
            processor_reference=reference,
            error_code=error_code,
            decline_code=decline_code,
            message=_s(body.get("refusalReason")),
            retryable_elsewhere=retryable,
            raw_status=result_code,
        )
    if result_code in _ACTION_CODES:
        action = body.get("action") if isinstance(body.get("action"), dict) else {}
        assert isinstance(action, dict)
        url = _s(action.get("url"))
        return PaymentResult(
            status=PaymentStatus.REQUIRES_ACTION,
            processor_reference=reference,
            next_action=NextAction(redirect_url=url) if url else None,
            raw_status=result_code,
        )
    return PaymentResult(status=PaymentStatus.PENDING, processor_reference=reference, raw_status=result_code or None)


def status_result(body: dict[str, Any], *, error_code: str | None = None) -> PaymentResult:
    """Map the simulator's lookup object (``GET /_sim/payments/…``, an extension: Adyen has no lookup API)."""
    state = _s(body.get("status")) or ""
    status = _PAYMENT_STATES.get(state, PaymentStatus.PENDING)
    base = payment_result(body, capture=status is PaymentStatus.CAPTURED)
    if status is not PaymentStatus.FAILED and base.status is PaymentStatus.FAILED:
        base = PaymentResult(status=status, processor_reference=base.processor_reference)
    return PaymentResult(
        status=status,
        processor_reference=base.processor_reference,
        amount_authorized=_i(body.get("authorisedAmount")),
        amount_captured=_i(body.get("capturedAmount")),
        decline_code=base.decline_code if status is PaymentStatus.FAILED else None,
        error_code=error_code or (base.error_code if status is PaymentStatus.FAILED else None),
        message=base.message if status is PaymentStatus.FAILED else None,
        retryable_elsewhere=base.retryable_elsewhere if status is PaymentStatus.FAILED else False,
        next_action=base.next_action if status is PaymentStatus.REQUIRES_ACTION else None,
        raw_status=state or None,
    )


def _occurred(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def event_from_item(item: dict[str, Any]) -> ConnectorEvent:
    """One ``NotificationRequestItem``. The event id is ``pspReference:eventCode:success`` (Adyen has no event
    id; this triple is unique per notification and stable across redeliveries)."""
    code = _s(item.get("eventCode")) or ""
    success = str(item.get("success", "")).lower() == "true"
    psp = _s(item.get("pspReference"))
    original = _s(item.get("originalReference"))
    amount = item.get("amount") if isinstance(item.get("amount"), dict) else {}
    assert isinstance(amount, dict)
    extra = item.get("additionalData") if isinstance(item.get("additionalData"), dict) else {}
    assert isinstance(extra, dict)
    currency = _s(amount.get("currency"))
    common: dict[str, Any] = {
        "event_id": f"{psp}:{code}:{'true' if success else 'false'}",
        "idempotency_key": _s(extra.get("metadata.paygate_idempotency_key")),
        "amount": _i(amount.get("value")),
        "currency": currency.lower() if currency else None,
        "occurred_at": _occurred(item.get("eventDate")),
        "raw_type": code,
    }
    if code == "AUTHORISATION":
        status = PaymentStatus.AUTHORIZED if success else PaymentStatus.FAILED
        return ConnectorEvent(kind="payment", processor_reference=psp, payment_status=status, **common)
    if code == "CAPTURE":
        status = PaymentStatus.CAPTURED if success else PaymentStatus.AUTHORIZED
        return ConnectorEvent(kind="payment", processor_reference=original or psp, payment_status=status, **common)
    if code in ("CANCELLATION", "CANCEL_OR_REFUND"):
        status = PaymentStatus.VOIDED if success else PaymentStatus.AUTHORIZED
        return ConnectorEvent(kind="payment", processor_reference=original or psp, payment_status=status, **common)
    if code in ("REFUND", "REFUND_FAILED", "REFUNDED_REVERSED"):
        ok = success and code == "REFUND"
        return ConnectorEvent(
            kind="refund",
            processor_reference=psp,
            refund_status=RefundStatus.SUCCEEDED if ok else RefundStatus.FAILED,
            **common,
        )
    if "CHARGEBACK" in code or code.startswith("DISPUTE") or code == "REQUEST_FOR_INFORMATION":
        return ConnectorEvent(kind="dispute", processor_reference=original or psp, **common)
    if code == "CAPTURE_FAILED":
        return ConnectorEvent(
            kind="payment",
            processor_reference=original or psp,
            payment_status=PaymentStatus.AUTHORIZED,
            **common,
        )
    return ConnectorEvent(kind="payment", processor_reference=psp, payment_status=PaymentStatus.PENDING, **common)
