"""Pure routing-rule evaluation: which processor accounts, in which order, for one payment."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PaymentFacts", "Rule", "order_accounts", "rule_matches"]


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    amount: int
    currency: str
    card_brand: str | None = None
    country: str | None = None  # card (BIN) country, else the customer's country


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    priority: int
    conditions: Mapping[str, Any]
    processors: Sequence[str]
    weights: Mapping[str, int] | None = None


def rule_matches(rule: Rule, facts: PaymentFacts) -> bool:
    """Every condition present must hold; a list condition holds when the fact is one of its values. A
    condition on a fact paygate does not know (e.g. country of an unknown BIN) does not hold."""
    c = rule.conditions
    if c.get("currency") and facts.currency not in c["currency"]:
        return False
    if c.get("card_brand") and facts.card_brand not in c["card_brand"]:
        return False
    if c.get("country") and (facts.country or "").upper() not in c["country"]:
        return False
    if c.get("amount_gte") is not None and facts.amount < c["amount_gte"]:
        return False
    return not (c.get("amount_lte") is not None and facts.amount > c["amount_lte"])


def order_accounts(
    rules: Sequence[Rule], default_order: Sequence[str], facts: PaymentFacts, *, rng: random.Random | None = None
) -> list[str]:
    """The failover order for a payment: the first matching rule's processors (its ``weights`` pick the first
    one by weighted random choice — a volume split — the rest follow in listed order), otherwise the
    merchant's accounts by priority."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.id)):
        if not rule_matches(rule, facts):
            continue
        ordered = list(dict.fromkeys(rule.processors))
        weights = rule.weights or {}
        weighted = [(acct, weights.get(acct, 0)) for acct in ordered if weights.get(acct, 0) > 0]
        if weighted:
            pick = (rng or random).choices([a for a, _ in weighted], weights=[w for _, w in weighted])[0]
            ordered.remove(pick)
            ordered.insert(0, pick)
        return ordered
    return list(default_order)
