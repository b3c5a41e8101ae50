"""Which events an endpoint subscribed to: the one matching rule (relay, redelivery, ``pending_webhooks``)."""

from __future__ import annotations

__all__ = ["matches"]


def matches(enabled_events: list[str], event_type: str) -> bool:
    """True when an endpoint subscribed to ``enabled_events`` should receive ``event_type``: ``"*"``, the type
    itself, or a prefix wildcard such as ``"payment_intent.*"``."""
    for pattern in enabled_events:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False
