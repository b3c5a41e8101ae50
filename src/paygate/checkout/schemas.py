"""Checkout request parameters, the Stripe-shaped ``checkout.session`` / ``item`` objects, and the plain data
types the hosted page exchanges with :class:`~paygate.checkout.service.CheckoutService`.

Parameters are only shaped here (types, required fields, unknown-parameter errors); the rules that need the
clock, the database or several fields at once (amount limits, one currency, expiry window, customer exists) are
checked by the service, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from paygate.db.pagination import ListParams
from paygate.kit import jsonx
from paygate.kit.params import Expand, Metadata, Params, _int

__all__ = [
    "LOCALES",
    "CardInput",
    "CreateSessionParams",
    "ExpireParams",
    "LineItemListParams",
    "LineItemParams",
    "LineItemView",
    "PageSession",
    "PayOutcome",
    "PriceData",
    "ProductData",
    "RetrieveParams",
    "SessionListParams",
    "SettingsParams",
    "line_item_object",
    "session_object",
    "settings_object",
]

Int = Annotated[int, BeforeValidator(_int)]

# Stripe's checkout locales (IETF tags); "auto" (or none) lets the browser decide.
LOCALES = frozenset(
    {
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    }
)


# ---------------------------------------------------------------------------------------------- parameters
class ProductData(Params):
    name: Annotated[str, Field(min_length=1, max_length=5000)]
    description: Annotated[str, Field(max_length=40000)] | None = None
    metadata: Metadata = {}


class PriceData(Params):
    currency: str
    unit_amount: Int | None = None
    product_data: ProductData | None = None
    product: str | None = None  # a Product object id: not supported (paygate has no product catalogue)
    unit_amount_decimal: str | None = None  # not supported: minor units only
    tax_behavior: Literal["exclusive", "inclusive", "unspecified"] | None = None


class LineItemParams(Params):
    price_data: PriceData | None = None
    price: str | None = None  # a Price object id: not supported
    quantity: Int | None = None


class CreateSessionParams(Params):
    """``POST /v1/checkout/sessions``. ``amount`` / ``currency`` / ``description`` (one line, paygate extension)
    are the alternative to ``line_items``."""

    mode: str
    success_url: Annotated[str, Field(max_length=5000)]
    cancel_url: Annotated[str, Field(max_length=5000)] | None = None
    line_items: list[LineItemParams] | None = None
    amount: Int | None = None
    currency: str | None = None
    description: Annotated[str, Field(min_length=1, max_length=5000)] | None = None
    customer: str | None = None
    customer_email: Annotated[str, Field(max_length=512)] | None = None
    client_reference_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    metadata: Metadata = {}
    locale: str | None = None
    expires_at: Int | None = None
    payment_method_types: list[Literal["card"]] | None = None
    expand: Expand = []


class RetrieveParams(Params):
    expand: Expand = []


class ExpireParams(Params):
    expand: Expand = []


class SessionListParams(ListParams):
    payment_intent: str | None = None
    status: Literal["open", "complete", "expired"] | None = None
    customer: str | None = None


class LineItemListParams(Params):
    limit: Annotated[Int, Field(ge=1, le=100)] = 10
    starting_after: str | None = None
    ending_before: str | None = None
    expand: Expand = []


class SettingsParams(Params):
    """``POST /v1/checkout/settings``: ``allowed_frame_ancestors=""`` clears the list."""

    default_expires_in: Int | None = None
    allowed_frame_ancestors: Annotated[list[str], BeforeValidator(lambda v: [] if v == "" else v)] | None = None


# ---------------------------------------------------------------------------------------------- objects
def _customer_details(row: dict[str, Any]) -> dict[str, Any] | None:
    """Stripe shows what the customer entered once the session is complete."""
    if row["status"] != "complete" or not row["customer_details"]:
        return None
    stored = jsonx.loads(row["customer_details"])
    address = stored.get("address") or {}
    return {
        "address": {
            "city": None,
            "country": address.get("country"),
            "line1": None,
            "line2": None,
            "postal_code": address.get("postal_code"),
            "state": None,
        },
        "email": stored.get("email"),
        "name": stored.get("name"),
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def session_object(
    row: dict[str, Any],
    *,
    url: str,
    line_items: dict[str, Any] | None = None,
    payment_intent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Stripe ``checkout.session`` for a ``checkout_sessions`` row. ``url`` (the hosted page) is only shown
    while the session is open, as in Stripe. ``line_items`` / ``payment_intent`` are expansions."""
    status = row["status"]
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": row["amount_subtotal"],
        "amount_total": row["amount_total"],
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": row["cancel_url"],
        "client_reference_id": row["client_reference_id"],
        "client_secret": None,
        "consent": None,
        "consent_collection": None,
        "created": row["created"],
        "currency": row["currency"],
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": row["customer"],
        "customer_creation": None if row["customer"] else "if_required",
        "customer_details": _customer_details(row),
        "customer_email": row["customer_email"],
        "discounts": [],
        "expires_at": row["expires_at"],
        "invoice": None,
        "invoice_creation": None,
        "livemode": bool(row["livemode"]),
        "locale": row["locale"],
        "metadata": jsonx.loads(row["metadata"]),
        "mode": row["mode"],
        "payment_intent": payment_intent if payment_intent is not None else row["payment_intent"],
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": row["payment_status"],
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_details": None,
        "shipping_options": [],
        "status": status,
        "submit_type": None,
        "subscription": None,
        "success_url": row["success_url"],
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url if status == "open" else None,
    }
    if line_items is not None:
        obj["line_items"] = line_items
    return obj


def line_item_object(row: dict[str, Any], *, livemode: bool, created: int) -> dict[str, Any]:
    """A Stripe line ``item`` with an ad-hoc one-time ``price`` (paygate keeps no price catalogue)."""
    return {
        "id": row["id"],
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": row["amount_total"],
        "amount_tax": 0,
        "amount_total": row["amount_total"],
        "currency": row["currency"],
        "description": row["name"],
        "price": {
            "id": row["price_id"],
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": row["currency"],
            "custom_unit_amount": None,
            "livemode": livemode,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": row["product_id"],
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": row["unit_amount"],
            "unit_amount_decimal": str(row["unit_amount"]),
        },
        "quantity": row["quantity"],
    }


def settings_object(row: dict[str, Any], *, livemode: bool) -> dict[str, Any]:
    """The merchant's checkout settings (paygate extension object ``checkout.settings``)."""
    return {
        "object": "checkout.settings",
        "livemode": livemode,
        "default_expires_in": row["default_expires_in"],
        "allowed_frame_ancestors": jsonx.loads(row["allowed_frame_ancestors"]),
        "updated": row["updated"],
    }


# ---------------------------------------------------------------------------------------------- page types
@dataclass(frozen=True)
class LineItemView:
    description: str
    quantity: int
    unit_amount: int
    amount_total: int


@dataclass(frozen=True)
class PageSession:
    """Everything the hosted page needs; no authentication (the unguessable id is the capability)."""

    id: str
    livemode: bool
    status: Literal["open", "complete", "expired"]
    payment_status: Literal["unpaid", "paid"]
    merchant_name: str
    currency: str
    amount_total: int
    line_items: list[LineItemView]
    locale: str | None
    customer_email: str | None
    expires_at: int
    success_url: str  # {CHECKOUT_SESSION_ID} already substituted
    cancel_url: str | None
    frame_ancestors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CardInput:
    """What the customer typed. ``repr`` never shows the number or the CVC."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)
    name: str | None = None
    country: str | None = None
    postal_code: str | None = None


PayKind = Literal[
    "succeeded",
    "requires_action",
    "declined",
    "invalid",
    "processing",
    "expired",
    "already_paid",
    "in_progress",
    "not_found",
]


@dataclass(frozen=True)
class PayOutcome:
    kind: PayKind
    redirect_url: str | None = None  # success_url for succeeded / already_paid; the challenge URL for requires_action
    message: str | None = None  # customer-safe text for declined / invalid (never contains card data)
    decline_code: str | None = None
    param: str | None = None  # which field was invalid ("number", "exp_month", "exp_year", "cvc")
