"""Customer request parameters and the Stripe-shaped Customer object."""

from __future__ import annotations

from typing import Any

from paygate.db.pagination import ListParams
from paygate.kit import jsonx
from paygate.kit.params import Expand, Metadata, MetadataUpdate, Params
from paygate.vault.schemas import Address

__all__ = [
    "CreateParams",
    "CustomerListParams",
    "InvoiceSettings",
    "PaymentMethodsParams",
    "UpdateParams",
    "customer_object",
    "deleted_object",
]


class InvoiceSettings(Params):
    default_payment_method: str | None = None  # "" unsets


class CreateParams(Params):
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    address: Address | None = None
    metadata: Metadata = {}
    payment_method: str | None = None  # attached and made the default on create, as in Stripe
    invoice_settings: InvoiceSettings | None = None
    expand: Expand = []


class UpdateParams(Params):
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    address: Address | None = None
    metadata: MetadataUpdate | None = None
    invoice_settings: InvoiceSettings | None = None
    expand: Expand = []


class CustomerListParams(ListParams):
    email: str | None = None


class PaymentMethodsParams(ListParams):
    type: str | None = None


def _address(value: str | None) -> dict[str, Any] | None:
    return jsonx.loads(value) if value else None


def customer_object(row: dict[str, Any]) -> dict[str, Any]:
    """The Stripe Customer for a ``customers`` row."""
    if row["deleted"]:
        return deleted_object(row["id"])
    return {
        "id": row["id"],
        "object": "customer",
        "address": _address(row["address"]),
        "balance": 0,
        "created": row["created"],
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": row["description"],
        "discount": None,
        "email": row["email"],
        "invoice_prefix": row["id"][-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": row["default_payment_method"],
            "footer": None,
            "rendering_options": None,
        },
        "livemode": bool(row["livemode"]),
        "metadata": jsonx.loads(row["metadata"]),
        "name": row["name"],
        "next_invoice_sequence": 1,
        "phone": row["phone"],
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def deleted_object(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "deleted": True}
