"""Who receives an event: the merchant's endpoints that are receiving, and the one rule for which event types
each subscribed to (relay, redelivery, ``pending_webhooks``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_

from paygate.events.tables import webhook_endpoints as we

__all__ = ["matches", "receiving"]


def receiving(merchant_id: Any, livemode: Any) -> ColumnElement[bool]:
    """``WHERE`` clause of the endpoints of ``merchant_id`` in mode ``livemode`` (values or columns) that
    receive events: enabled and not deleted."""
    return and_(we.c.merchant_id == merchant_id, we.c.livemode == livemode, we.c.status == "enabled", ~we.c.deleted)


def matches(enabled_events: list[str], event_type: str) -> bool:
    """True when an endpoint subscribed to ``enabled_events`` should receive ``event_type``: ``"*"``, the type
    itself, or a prefix wildcard such as ``"payment_intent.*"``."""
    for pattern in enabled_events:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
