"""PaymentIntent request parameters and the Stripe-shaped response objects (PaymentIntent, Charge)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from paygate.db.pagination import ListParams
from paygate.kit import jsonx
from paygate.kit.money import normalize_currency
from paygate.kit.params import Expand, Metadata, MetadataUpdate, Params, PositiveInt, StrictBool
from paygate.vault.schemas import PaymentMethodData

__all__ = [
    "CancelParams",
    "CaptureParams",
    "ConfirmParams",
    "CreateParams",
    "IntentListParams",
    "UpdateParams",
    "charge_object",
    "intent_object",
]

CaptureMethod = Literal["automatic", "automatic_async", "manual"]
SetupFutureUsage = Literal["on_session", "off_session"]
CancellationReason = Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"]


class _Currency(Params):
    @field_validator("currency", mode="before", check_fields=False)
    @classmethod
    def _currency(cls, v: Any) -> str:
        return normalize_currency(v)


class AutomaticPaymentMethods(Params):
    enabled: StrictBool
    allow_redirects: Literal["always", "never"] | None = None


class CreateParams(_Currency):
    amount: PositiveInt
    currency: str
    capture_method: CaptureMethod = "automatic"
    confirmation_method: Literal["automatic", "manual"] = "automatic"
    confirm: StrictBool = False
    customer: str | None = None
    description: str | None = None
    metadata: Metadata = {}
    payment_method: str | None = None
    payment_method_data: PaymentMethodData | None = None  # tokenized in the same request (CVC in memory only)
    payment_method_types: list[Literal["card"]] | None = None
    automatic_payment_methods: AutomaticPaymentMethods | None = None
    receipt_email: str | None = None
    return_url: str | None = None
    setup_future_usage: SetupFutureUsage | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    off_session: StrictBool | None = None
    error_on_requires_action: StrictBool | None = None
    use_stripe_sdk: StrictBool | None = None
    expand: Expand = []


class UpdateParams(Params):
    amount: PositiveInt | None = None
    currency: str | None = None
    capture_method: CaptureMethod | None = None
    customer: str | None = None
    description: str | None = None
    metadata: MetadataUpdate | None = None
    payment_method: str | None = None
    payment_method_types: list[Literal["card"]] | None = None
    receipt_email: str | None = None
    setup_future_usage: SetupFutureUsage | Literal[""] | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    expand: Expand = []

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, v: Any) -> str | None:
        return None if v is None else normalize_currency(v)


class ConfirmParams(Params):
    payment_method: str | None = None
    payment_method_data: PaymentMethodData | None = None  # tokenized in the same request (CVC in memory only)
    return_url: str | None = None
    capture_method: CaptureMethod | None = None
    receipt_email: str | None = None
    setup_future_usage: SetupFutureUsage | Literal[""] | None = None
    off_session: StrictBool | None = None
    error_on_requires_action: StrictBool | None = None
    use_stripe_sdk: StrictBool | None = None
    client_secret: str | None = None
    expand: Expand = []


class CaptureParams(Params):
    amount_to_capture: PositiveInt | None = None
    metadata: MetadataUpdate | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    expand: Expand = []


class CancelParams(Params):
    cancellation_reason: CancellationReason | None = None
    expand: Expand = []


class IntentListParams(ListParams):
    customer: str | None = None


def intent_object(row: dict[str, Any], *, charge: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Stripe PaymentIntent object for a ``payment_intents`` row. ``charge`` expands ``latest_charge``."""
    status = row["status"]
    return {
        "id": row["id"],
        "object": "payment_intent",
        "amount": row["amount"],
        "amount_capturable": row["amount_capturable"],
        "amount_details": {"tip": {}},
        "amount_received": row["amount_received"],
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": row["canceled_at"],
        "cancellation_reason": row["cancellation_reason"],
        "capture_method": row["capture_method"],
        "client_secret": row["client_secret"],
        "confirmation_method": row["confirmation_method"],
        "created": row["created"],
        "currency": row["currency"],
        "customer": row["customer"],
        "description": row["description"],
        "invoice": None,
        "last_payment_error": jsonx.loads(row["last_payment_error"]),
        "latest_charge": charge if charge is not None else row["latest_charge"],
        "livemode": bool(row["livemode"]),
        "metadata": jsonx.loads(row["metadata"]),
        "next_action": jsonx.loads(row["next_action"]),
        "on_behalf_of": None,
        "payment_method": row["payment_method"],
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": jsonx.loads(row["payment_method_types"]),
        "processing": {"type": "card", "card": {}} if status == "processing" else None,
        "receipt_email": row["receipt_email"],
        "review": None,
        "setup_future_usage": row["setup_future_usage"],
        "shipping": None,
        "source": None,
        "statement_descriptor": row["statement_descriptor"],
        "statement_descriptor_suffix": row["statement_descriptor_suffix"],
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


_CHARGE_STATUS = {
    "captured": "succeeded",
    "authorized": "succeeded",
    "voided": "succeeded",
    "failed": "failed",
}


def charge_object(attempt: dict[str, Any], intent: dict[str, Any]) -> dict[str, Any]:
    """A Stripe Charge object built from one payment attempt (its id is the ``ch_`` id) and its intent."""
    failed = attempt["status"] == "failed"
    captured = attempt["status"] == "captured"
    refunded_amount = intent["amount_refunded"] if captured else 0
    brand = None
    pm = attempt["payment_method"] or ""
    if pm.startswith("pm_card_"):
        brand = pm.removeprefix("pm_card_").split("_")[0].split("chargeDeclined")[0] or None
    return {
        "id": attempt["id"],
        "object": "charge",
        "amount": attempt["amount"],
        "amount_captured": attempt["amount_captured"],
        "amount_refunded": refunded_amount,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "calculated_statement_descriptor": intent["statement_descriptor"],
        "captured": captured,
        "created": attempt["created"],
        "currency": attempt["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": attempt["failure_code"],
        "failure_message": attempt["failure_message"],
        "fraud_details": {},
        "livemode": bool(attempt["livemode"]),
        "metadata": jsonx.loads(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": attempt["decline_code"],
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": "issuer_declined" if failed else "authorized",
        },
        "paid": attempt["status"] in ("captured", "authorized"),
        "payment_intent": attempt["intent_id"],
        "payment_method": attempt["payment_method"],
        "payment_method_details": {"type": "card", "card": {"brand": brand}},
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": captured and refunded_amount == attempt["amount_captured"] and refunded_amount > 0,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": _CHARGE_STATUS.get(attempt["status"], "pending"),
        "transfer_data": None,
        "transfer_group": None,
    }
