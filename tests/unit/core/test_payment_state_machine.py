"""The PaymentIntent state machine, exhaustively: which actions are legal from which status, and how processor
outcomes move a payment (final states are final; nothing moves backwards except a decline)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit.errors import InvalidRequest
from paygate.payments.model import FINAL, Action, Outcome, Status, apply_outcome, check_action, rank

S, A, OC = Status, Action, Outcome
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")

# The table, written out independently of the implementation: True = legal.
LEGAL: dict[Action, set[Status]] = {
    A.UPDATE: {S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION},
    A.CONFIRM: {S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION},
    A.CAPTURE: {S.REQUIRES_CAPTURE},
    A.CANCEL: {S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION, S.REQUIRES_CAPTURE},
    A.REFUND: {S.SUCCEEDED},
}
ALL_CELLS = list(itertools.product(list(Status), list(Action)))


def test_the_table_covers_every_status_and_action() -> None:
    assert set(LEGAL) == set(Action)
    assert len(ALL_CELLS) == len(Status) * len(Action) == 35


@pytest.mark.parametrize(("status", "action"), ALL_CELLS, ids=[f"{s.value}-{a.value}" for s, a in ALL_CELLS])
def test_check_action_over_every_status_and_action(status: Status, action: Action) -> None:
    if status in LEGAL[action]:
        check_action(status.value, action, intent_id="pi_123")
        return
    with pytest.raises(InvalidRequest) as exc:
        check_action(status.value, action, intent_id="pi_123")
    err = exc.value
    assert err.status == 400
    assert err.type == "invalid_request_error"
    body = err.to_body()["error"]
    assert body["message"]
    if action is A.REFUND:
        expected = "payment_intent_unexpected_state" if status is S.CANCELED else "charge_not_refundable"
        assert err.code == expected
        assert err.param == "payment_intent"
        assert "pi_123" in err.message
    else:
        assert err.code == "payment_intent_unexpected_state"
        assert body["payment_intent"] == {"id": "pi_123", "object": "payment_intent", "status": status.value}
        assert f"status is {status.value}" in err.message
        for legal in LEGAL[action]:
            assert legal.value in err.message


def test_check_action_rejects_an_unknown_status_value() -> None:
    with pytest.raises(ValueError, match="not_a_status"):
        check_action("not_a_status", A.UPDATE, intent_id="pi_1")


def test_nothing_but_refund_is_legal_on_a_final_status() -> None:
    for status, action in itertools.product(FINAL, Action):
        if action is A.REFUND and status is S.SUCCEEDED:
            continue
        with pytest.raises(InvalidRequest):
            check_action(status.value, action, intent_id="pi_1")


OUTCOME_CELLS = list(itertools.product(list(Status), list(Outcome), CAPTURE_METHODS))


@pytest.mark.parametrize(("status", "outcome", "capture_method"), OUTCOME_CELLS)
def test_apply_outcome_is_total_and_returns_a_status_or_none(
    status: Status, outcome: Outcome, capture_method: str
) -> None:
    result = apply_outcome(status.value, outcome, capture_method=capture_method)
    assert result is None or isinstance(result, Status)
    assert result != status or status is S.PROCESSING  # "no change" is spelled None (except staying processing)


@pytest.mark.parametrize(("status", "outcome", "capture_method"), [c for c in OUTCOME_CELLS if c[0] in FINAL])
def test_final_states_never_change_for_any_outcome(status: Status, outcome: Outcome, capture_method: str) -> None:
    assert apply_outcome(status.value, outcome, capture_method=capture_method) is None


@pytest.mark.parametrize(("status", "capture_method"), list(itertools.product(list(Status), CAPTURE_METHODS)))
def test_unknown_outcome_never_changes_a_non_processing_state(status: Status, capture_method: str) -> None:
    result = apply_outcome(status.value, OC.UNKNOWN, capture_method=capture_method)
    assert result == (S.PROCESSING if status is S.PROCESSING else None)


def _is_allowed_regression(before: Status, outcome: Outcome, after: Status) -> bool:
    return outcome is OC.DECLINED and before in (S.PROCESSING, S.REQUIRES_ACTION) and after is S.REQUIRES_PAYMENT_METHOD


@pytest.mark.parametrize(("status", "outcome", "capture_method"), OUTCOME_CELLS)
def test_apply_outcome_never_lowers_rank_except_a_decline_of_an_in_flight_payment(
    status: Status, outcome: Outcome, capture_method: str
) -> None:
    result = apply_outcome(status.value, outcome, capture_method=capture_method)
    if result is None or _is_allowed_regression(status, outcome, result):
        return
    assert rank(result) >= rank(status), f"{status} --{outcome}/{capture_method}--> {result} moves backwards"


@pytest.mark.parametrize(
    ("status", "outcome", "capture_method", "expected"),
    [
        (S.PROCESSING, OC.CAPTURED, "automatic", S.SUCCEEDED),
        (S.PROCESSING, OC.AUTHORIZED, "manual", S.REQUIRES_CAPTURE),
        (S.PROCESSING, OC.AUTHORIZED, "automatic", S.PROCESSING),
        (S.PROCESSING, OC.AUTHORIZED, "automatic_async", S.PROCESSING),  # capture still to come, not manual
        (S.REQUIRES_ACTION, OC.AUTHORIZED, "automatic", None),  # not back to processing; sync sees the capture
        (S.PROCESSING, OC.DECLINED, "automatic", S.REQUIRES_PAYMENT_METHOD),
        (S.PROCESSING, OC.REQUIRES_ACTION, "automatic", S.REQUIRES_ACTION),
        (S.PROCESSING, OC.VOIDED, "manual", S.CANCELED),
        (S.REQUIRES_ACTION, OC.CAPTURED, "automatic", S.SUCCEEDED),
        (S.REQUIRES_ACTION, OC.AUTHORIZED, "manual", S.REQUIRES_CAPTURE),
        (S.REQUIRES_ACTION, OC.DECLINED, "manual", S.REQUIRES_PAYMENT_METHOD),
        (S.REQUIRES_CAPTURE, OC.CAPTURED, "manual", S.SUCCEEDED),
        (S.REQUIRES_CAPTURE, OC.VOIDED, "manual", S.CANCELED),
        (S.REQUIRES_CAPTURE, OC.DECLINED, "manual", None),  # a late decline cannot undo an authorization
        (S.REQUIRES_CAPTURE, OC.AUTHORIZED, "manual", None),  # duplicate
        (S.REQUIRES_CAPTURE, OC.REQUIRES_ACTION, "manual", None),  # late
        (S.REQUIRES_PAYMENT_METHOD, OC.DECLINED, "automatic", None),  # duplicate decline
        (S.REQUIRES_PAYMENT_METHOD, OC.REQUIRES_ACTION, "automatic", None),
        (S.REQUIRES_CONFIRMATION, OC.VOIDED, "manual", None),
    ],
)
def test_apply_outcome_documented_transitions(
    status: Status, outcome: Outcome, capture_method: str, expected: Status | None
) -> None:
    assert apply_outcome(status.value, outcome, capture_method=capture_method) == expected


@given(
    start=st.sampled_from(list(Status)),
    outcomes=st.lists(st.sampled_from(list(Outcome)), max_size=25),
    capture_method=st.sampled_from(CAPTURE_METHODS),
)
def test_any_sequence_of_outcomes_moves_monotonically(
    start: Status, outcomes: list[Outcome], capture_method: str
) -> None:
    """Duplicated, reordered and late processor answers: each step either is ignored, stays, or moves forward;
    the only step back is a decline of an in-flight payment; once final, always final."""
    status = start
    left: set[Status] = set()  # statuses left since the last decline: re-entering one would be a cycle
    for outcome in outcomes:
        result = apply_outcome(status.value, outcome, capture_method=capture_method)
        if status in FINAL:
            assert result is None
        if result is None or result == status:
            continue
        if _is_allowed_regression(status, outcome, result):
            left.clear()
        else:
            assert rank(result) >= rank(status), f"{status} --{outcome}--> {result}"
            assert result not in left, f"{status} --{outcome}--> {result} re-enters a state it already left"
            left.add(status)
        status = result


@given(outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=25))
def test_a_payment_that_succeeded_or_was_canceled_stays_so(outcomes: list[Outcome]) -> None:
    for final in FINAL:
        status: Status = final
        for outcome in outcomes:
            result = apply_outcome(status.value, outcome, capture_method="manual")
            status = result or status
        assert status is final


def test_rank_orders_progress() -> None:
    assert rank("requires_payment_method") == rank("requires_confirmation") < rank("processing")
    assert rank("processing") < rank("requires_action") < rank("requires_capture") < rank("succeeded")
    assert rank("succeeded") == rank("canceled")
