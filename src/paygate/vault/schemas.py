"""PaymentMethod request parameters and the Stripe-shaped PaymentMethod object.

Card fields are declared with ``repr=False``: a params object that ends up in a traceback or a debug log can
never print the PAN or CVC. Values are only syntactically typed here; the card checks (Luhn, brand length,
expiry, CVC length) run in the vault service so they answer with Stripe's 402 ``card_error`` codes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from paygate.db.pagination import ListParams
from paygate.kit import jsonx
from paygate.kit.params import Expand, Metadata, MetadataUpdate, Params

__all__ = [
    "AttachParams",
    "BillingDetails",
    "CardParams",
    "DetachParams",
    "PaymentMethodData",
    "PaymentMethodListParams",
    "UpdateParams",
    "billing_details_object",
    "payment_method_object",
]


class CardParams(Params):
    number: str = Field(repr=False)
    exp_month: int | str
    exp_year: int | str
    cvc: str | None = Field(default=None, repr=False)


class Address(Params):
    city: str | None = None
    country: str | None = None
    line1: str | None = None
    line2: str | None = None
    postal_code: str | None = None
    state: str | None = None


class BillingDetails(Params):
    address: Address | None = None
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class PaymentMethodData(Params):
    """``POST /v1/payment_methods`` body, and ``payment_method_data`` on a PaymentIntent create/confirm.

    ``allow_redisplay`` is accepted for Stripe.js compatibility and not stored (objects say ``unspecified``)."""

    type: Literal["card"]
    card: CardParams | None = None
    billing_details: BillingDetails | None = None
    metadata: Metadata = {}
    allow_redisplay: Literal["always", "limited", "unspecified"] | None = None
    expand: Expand = []


class UpdateParams(Params):
    billing_details: BillingDetails | None = None
    metadata: MetadataUpdate | None = None
    allow_redisplay: Literal["always", "limited", "unspecified"] | None = None
    expand: Expand = []


class AttachParams(Params):
    customer: str
    expand: Expand = []


class DetachParams(Params):
    expand: Expand = []


class PaymentMethodListParams(ListParams):
    customer: str | None = None
    type: Literal["card"] | None = None


def billing_details_object(details: BillingDetails | None) -> dict[str, Any]:
    """Stripe's full ``billing_details`` shape (every key present, ``None`` when unknown)."""
    address = details.address if details and details.address else None
    return {
        "address": {
            "city": address.city if address else None,
            "country": address.country if address else None,
            "line1": address.line1 if address else None,
            "line2": address.line2 if address else None,
            "postal_code": address.postal_code if address else None,
            "state": address.state if address else None,
        },
        "email": details.email if details else None,
        "name": details.name if details else None,
        "phone": details.phone if details else None,
    }


def payment_method_object(row: dict[str, Any]) -> dict[str, Any]:
    """The Stripe PaymentMethod for a ``payment_methods`` row: display data only (last4, never the PAN)."""
    return {
        "id": row["id"],
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": jsonx.loads(row["billing_details"]),
        "card": {
            "brand": row["brand"],
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": None},
            "country": row["country"],
            "display_brand": row["brand"],
            "exp_month": row["exp_month"],
            "exp_year": row["exp_year"],
            "fingerprint": row["fingerprint"],
            "funding": row["funding"],
            "generated_from": None,
            "last4": row["last4"],
            "networks": {"available": [row["brand"]], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": row["created"],
        "customer": row["customer"],
        "livemode": bool(row["livemode"]),
        "metadata": jsonx.loads(row["metadata"]),
        "type": row["type"],
    }
