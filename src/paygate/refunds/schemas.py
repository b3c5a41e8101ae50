"""Refund request parameters and the Stripe Refund object."""

from __future__ import annotations

from typing import Any, Literal

from paygate.db.pagination import ListParams
from paygate.kit import jsonx
from paygate.kit.params import Expand, Metadata, MetadataUpdate, Params, PositiveInt

__all__ = ["CreateParams", "RefundListParams", "UpdateParams", "refund_object"]


class CreateParams(Params):
    payment_intent: str | None = None
    charge: str | None = None
    amount: PositiveInt | None = None
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: Metadata = {}
    expand: Expand = []
    instructions_email: str | None = None


class UpdateParams(Params):
    metadata: MetadataUpdate | None = None
    expand: Expand = []


class RefundListParams(ListParams):
    payment_intent: str | None = None
    charge: str | None = None


def refund_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "refund",
        "amount": row["amount"],
        "balance_transaction": None,
        "charge": row["charge"],
        "created": row["created"],
        "currency": row["currency"],
        "description": None,
        "destination_details": {"type": "card", "card": {"type": "refund"}},
        "failure_balance_transaction": None,
        "failure_reason": row["failure_reason"],
        "metadata": jsonx.loads(row["metadata"]),
        "next_action": None,
        "payment_intent": row["payment_intent"],
        "reason": row["reason"],
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": row["status"],
        "transfer_reversal": None,
    }
