"""The PaymentIntent state machine, pure (no I/O), so it can be tested exhaustively without a database.

Statuses are Stripe's. Which API actions are legal from which status::

    requires_payment_method ──update pm──► requires_confirmation
    requires_payment_method / requires_confirmation ──confirm──► processing (processor call in flight)
    processing ──authorized, capture_method=manual──► requires_capture
    processing ──captured──► succeeded
    processing ──declined──► requires_payment_method (last_payment_error set)
    processing ──3-D Secure──► requires_action ──authenticated──► requires_capture / succeeded
    requires_capture ──capture──► succeeded       requires_capture ──cancel (void)──► canceled
    requires_payment_method / requires_confirmation / requires_action ──cancel──► canceled

``succeeded`` and ``canceled`` are final. Outcomes never move a payment backwards (see :func:`apply_outcome`):
a late or duplicated processor answer for a payment that already reached a later state is ignored.
"""

from __future__ import annotations

import enum

from paygate.kit.errors import InvalidRequest

__all__ = [
    "FINAL",
    "Action",
    "Outcome",
    "Status",
    "apply_outcome",
    "check_action",
    "rank",
]


class Status(enum.StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class Action(enum.StrEnum):
    UPDATE = "update"
    CONFIRM = "confirm"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


FINAL = frozenset({Status.SUCCEEDED, Status.CANCELED})

_ALLOWED: dict[Action, frozenset[Status]] = {
    Action.UPDATE: frozenset({Status.REQUIRES_PAYMENT_METHOD, Status.REQUIRES_CONFIRMATION, Status.REQUIRES_ACTION}),
    Action.CONFIRM: frozenset({Status.REQUIRES_PAYMENT_METHOD, Status.REQUIRES_CONFIRMATION}),
    Action.CAPTURE: frozenset({Status.REQUIRES_CAPTURE}),
    Action.CANCEL: frozenset(
        {
            Status.REQUIRES_PAYMENT_METHOD,
            Status.REQUIRES_CONFIRMATION,
            Status.REQUIRES_ACTION,
            Status.REQUIRES_CAPTURE,
        }
    ),
    Action.REFUND: frozenset({Status.SUCCEEDED}),
}

_VERB = {
    Action.UPDATE: "update",
    Action.CONFIRM: "confirm",
    Action.CAPTURE: "capture",
    Action.CANCEL: "cancel",
    Action.REFUND: "refund",
}


def check_action(status: str, action: Action, *, intent_id: str) -> None:
    """Raise Stripe's ``payment_intent_unexpected_state`` error unless ``action`` is legal from ``status``."""
    if Status(status) in _ALLOWED[action]:
        return
    if action is Action.REFUND:
        raise InvalidRequest(
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            code="charge_not_refundable" if status != Status.CANCELED else "payment_intent_unexpected_state",
            param="payment_intent",
        )
    allowed = ", ".join(sorted(s.value for s in _ALLOWED[action]))
    raise InvalidRequest(
        f"This PaymentIntent's status is {status}; you can only {_VERB[action]} a PaymentIntent with one of the "
        f"following statuses: {allowed}.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": {"id": intent_id, "object": "payment_intent", "status": status}},
    )


# Progress order used for monotonicity. requires_payment_method after a decline is a *retry* of the same
# intent, not a regression, so it only ever comes from processing (see apply_outcome).
_RANK = {
    Status.REQUIRES_PAYMENT_METHOD: 0,
    Status.REQUIRES_CONFIRMATION: 0,
    Status.PROCESSING: 1,
    Status.REQUIRES_ACTION: 2,
    Status.REQUIRES_CAPTURE: 3,
    Status.SUCCEEDED: 4,
    Status.CANCELED: 4,
}


def rank(status: str) -> int:
    return _RANK[Status(status)]


class Outcome(enum.StrEnum):
    """A processor's answer about an authorization or capture, in state-machine terms."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"
    VOIDED = "voided"
    UNKNOWN = "unknown"


def apply_outcome(status: str, outcome: Outcome, *, capture_method: str) -> Status | None:
    """The status an intent moves to when ``outcome`` arrives, or ``None`` if the outcome must be ignored
    (duplicate, late, or would move the intent backwards). Pure and total over all inputs."""
    current = Status(status)
    if current in FINAL:
        return None
    if outcome is Outcome.UNKNOWN:
        return Status.PROCESSING if current is Status.PROCESSING else None
    if outcome is Outcome.DECLINED:
        # Only an in-flight or authenticating payment can be declined back to requires_payment_method.
        if current in (Status.PROCESSING, Status.REQUIRES_ACTION):
            return Status.REQUIRES_PAYMENT_METHOD
        return None
    if outcome is Outcome.REQUIRES_ACTION:
        return Status.REQUIRES_ACTION if current is Status.PROCESSING else None
    if outcome is Outcome.VOIDED:
        return Status.CANCELED if current in (Status.REQUIRES_CAPTURE, Status.PROCESSING) else None
    if outcome is Outcome.CAPTURED:
        return Status.SUCCEEDED
    # AUTHORIZED
    if capture_method != "manual":  # automatic and automatic_async: the processor was asked to capture
        # An automatic-capture payment reported as merely authorized is still being captured: it stays
        # processing. From requires_action that would be a step backwards (and let a late requires_action
        # answer cycle it), so it is ignored there; the status sync sees the capture.
        return Status.PROCESSING if current is Status.PROCESSING else None
    target = Status.REQUIRES_CAPTURE
    return target if rank(target) > rank(current) else None
