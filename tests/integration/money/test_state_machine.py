"""Hypothesis drives random sequences of API calls against PaymentIntents and checks every answer against a
small reference model of Stripe's lifecycle: statuses, amounts, and which calls must fail (and how)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from paygate.ledger.service import verify
from tests.conftest import Merchant

pytestmark = pytest.mark.db

PMS = {"pm_card_visa": "ok", "pm_card_chargeDeclined": "decline", "pm_card_authenticationRequired": "action"}
UPDATABLE = {"requires_payment_method", "requires_confirmation", "requires_action"}
CONFIRMABLE = {"requires_payment_method", "requires_confirmation"}
CANCELABLE = UPDATABLE | {"requires_capture"}


@dataclass
class Model:
    amount: int
    capture_method: str
    status: str
    capturable: int = 0
    received: int = 0
    refunded: int = 0


def make_machine(merchant: Merchant) -> type[RuleBasedStateMachine]:
    class PaymentIntentMachine(RuleBasedStateMachine):
        intents = Bundle("intents")

        def __init__(self) -> None:
            super().__init__()
            self.model: dict[str, Model] = {}

        def _check(self, pi_id: str, body: dict[str, object]) -> None:
            m = self.model[pi_id]
            assert body["status"] == m.status, (body["status"], m)
            assert body["amount"] == m.amount
            assert body["amount_capturable"] == m.capturable
            assert body["amount_received"] == m.received

        @rule(target=intents, amount=st.integers(50, 100_000), manual=st.booleans(),
              pm=st.sampled_from([None, *PMS]))  # fmt: skip
        def create(self, amount: int, manual: bool, pm: str | None) -> str:
            data = {"amount": str(amount), "currency": "usd", "capture_method": "manual" if manual else "automatic"}
            if pm:
                data["payment_method"] = pm
            r = merchant.post("/v1/payment_intents", data)
            assert r.status_code == 200, r.text
            body = r.json()
            status = "requires_confirmation" if pm else "requires_payment_method"
            self.model[body["id"]] = Model(amount, data["capture_method"], status)
            self._check(body["id"], body)
            return str(body["id"])

        @rule(pi=intents, pm=st.sampled_from(list(PMS)))
        def confirm(self, pi: str, pm: str) -> None:
            m = self.model[pi]
            r = merchant.post(f"/v1/payment_intents/{pi}/confirm", {"payment_method": pm})
            if m.status not in CONFIRMABLE:
                assert r.status_code == 400, r.text
                assert r.json()["error"]["code"] == "payment_intent_unexpected_state"
                return
            kind = PMS[pm]
            if kind == "decline":
                assert r.status_code == 402, r.text
                assert r.json()["error"]["type"] == "card_error"
                m.status = "requires_payment_method"
                return
            assert r.status_code == 200, r.text
            if kind == "action":
                m.status = "requires_action"
            elif m.capture_method == "manual":
                m.status, m.capturable = "requires_capture", m.amount
            else:
                m.status, m.received = "succeeded", m.amount
            self._check(pi, r.json())

        @rule(pi=intents, fraction=st.sampled_from([None, 0.5, 1.0, 1.5]))
        def capture(self, pi: str, fraction: float | None) -> None:
            m = self.model[pi]
            data = {} if fraction is None else {"amount_to_capture": str(max(1, int(m.amount * fraction)))}
            r = merchant.post(f"/v1/payment_intents/{pi}/capture", data)
            if m.status != "requires_capture":
                assert r.status_code == 400, r.text
                return
            amount = m.capturable if fraction is None else max(1, int(m.amount * fraction))
            if amount > m.capturable:
                assert r.status_code == 400, r.text
                assert r.json()["error"]["code"] == "amount_too_large"
                return
            assert r.status_code == 200, r.text
            m.status, m.received, m.capturable = "succeeded", amount, 0
            self._check(pi, r.json())

        @rule(pi=intents)
        def cancel(self, pi: str) -> None:
            m = self.model[pi]
            r = merchant.post(f"/v1/payment_intents/{pi}/cancel")
            if m.status not in CANCELABLE:
                assert r.status_code == 400, r.text
                return
            assert r.status_code == 200, r.text
            m.status, m.capturable = "canceled", 0
            self._check(pi, r.json())

        @rule(pi=intents, amount=st.integers(1, 120_000))
        def refund(self, pi: str, amount: int) -> None:
            m = self.model[pi]
            r = merchant.post("/v1/refunds", {"payment_intent": pi, "amount": str(amount)})
            remaining = m.received - m.refunded
            if m.status != "succeeded" or remaining <= 0 or amount > remaining:
                assert r.status_code == 400, r.text
                return
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "succeeded"
            m.refunded += amount

        @rule(pi=intents, amount=st.integers(50, 100_000))
        def update(self, pi: str, amount: int) -> None:
            m = self.model[pi]
            r = merchant.post(f"/v1/payment_intents/{pi}", {"amount": str(amount)})
            if m.status not in UPDATABLE:
                assert r.status_code == 400, r.text
                return
            assert r.status_code == 200, r.text
            m.amount = amount
            self._check(pi, r.json())

        @rule(pi=intents)
        def retrieve(self, pi: str) -> None:
            r = merchant.get(f"/v1/payment_intents/{pi}")
            assert r.status_code == 200
            self._check(pi, r.json())

        @invariant()
        def ledger_balances(self) -> None:
            if not self.model:
                return

            async def go() -> list[str]:
                async with merchant.server.gateway.db.read() as conn:
                    return (await verify(conn)).problems

            assert merchant.server.call(go()) == []

    return PaymentIntentMachine


def test_payment_intent_lifecycle_matches_the_reference_model(merchant: Merchant) -> None:
    run_state_machine_as_test(
        make_machine(merchant),
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
