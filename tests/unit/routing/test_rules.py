"""Routing-rule evaluation (pure): conditions, priority order, failover order and weighted volume split."""

from __future__ import annotations

import random
from collections import Counter

from paygate.processors.breaker import BreakerConfig, BreakerRegistry, CircuitBreaker
from paygate.routing.rules import PaymentFacts, Rule, order_accounts, rule_matches

DEFAULT = ["proc_a", "proc_b", "proc_c"]


def facts(**kw: object) -> PaymentFacts:
    base: dict[str, object] = {"amount": 5000, "currency": "usd", "card_brand": "visa", "country": "US"}
    return PaymentFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_no_matching_rule_uses_the_merchant_priority_order() -> None:
    rules = [Rule("rr_1", 1, {"currency": ["eur"]}, ["proc_c"])]
    assert order_accounts(rules, DEFAULT, facts()) == DEFAULT


def test_currency_brand_country_and_amount_conditions_each_select_their_rule() -> None:
    rules = [
        Rule("rr_cur", 10, {"currency": ["eur", "gbp"]}, ["proc_b"]),
        Rule("rr_brand", 20, {"card_brand": ["amex"]}, ["proc_c"]),
        Rule("rr_country", 30, {"country": ["BR", "MX"]}, ["proc_c", "proc_a"]),
        Rule("rr_big", 40, {"amount_gte": 100_000, "amount_lte": 1_000_000}, ["proc_b", "proc_a"]),
    ]
    assert order_accounts(rules, DEFAULT, facts(currency="gbp"))[0] == "proc_b"
    assert order_accounts(rules, DEFAULT, facts(card_brand="amex"))[0] == "proc_c"
    assert order_accounts(rules, DEFAULT, facts(country="BR")) == ["proc_c", "proc_a"]
    assert order_accounts(rules, DEFAULT, facts(amount=200_000)) == ["proc_b", "proc_a"]
    assert order_accounts(rules, DEFAULT, facts(amount=2_000_000)) == DEFAULT


def test_rules_are_evaluated_by_priority_and_all_conditions_must_hold() -> None:
    later = Rule("rr_later", 50, {"currency": ["eur"]}, ["proc_c"])
    first = Rule("rr_first", 5, {"currency": ["eur"], "card_brand": ["visa"]}, ["proc_b"])
    assert order_accounts([later, first], DEFAULT, facts(currency="eur"))[0] == "proc_b"
    assert order_accounts([later, first], DEFAULT, facts(currency="eur", card_brand="mastercard"))[0] == "proc_c"


def test_unknown_country_does_not_match_a_country_rule() -> None:
    assert not rule_matches(Rule("rr", 1, {"country": ["US"]}, ["proc_a"]), facts(country=None))


def test_weighted_split_picks_the_first_processor_in_proportion_and_keeps_the_rest_for_failover() -> None:
    rule = Rule("rr_split", 1, {}, ["proc_a", "proc_b"], weights={"proc_a": 70, "proc_b": 30})
    rng = random.Random(1234)
    firsts = Counter()
    for _ in range(5000):
        order = order_accounts([rule], DEFAULT, facts(), rng=rng)
        assert sorted(order) == ["proc_a", "proc_b"]
        firsts[order[0]] += 1
    assert 0.66 < firsts["proc_a"] / 5000 < 0.74


def test_breaker_opens_on_failures_half_opens_after_the_wait_and_closes_on_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker(BreakerConfig(window=10, min_calls=4, failure_threshold=0.5, open_seconds=30))
    breaker.clock = lambda: now[0]
    for ok in (True, False, False, True):
        assert breaker.allow()
        breaker.record(ok)
    assert breaker.state == "open"
    assert not breaker.allow()
    now[0] = 31
    assert breaker.allow()  # the one half-open probe
    assert not breaker.allow()  # no second probe at the same time
    breaker.record(True)
    assert breaker.state == "closed"


def test_a_failed_half_open_probe_reopens_the_breaker() -> None:
    now = [0.0]
    breaker = CircuitBreaker(BreakerConfig(window=10, min_calls=2, failure_threshold=0.5, open_seconds=5))
    breaker.clock = lambda: now[0]
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "open"
    now[0] = 6
    assert breaker.allow()
    breaker.record(False)
    assert breaker.state == "open"
    assert not breaker.allow()


def test_a_reset_registry_hands_out_closed_breakers_that_have_seen_no_calls() -> None:
    registry = BreakerRegistry(BreakerConfig(window=10, min_calls=2, failure_threshold=0.5, open_seconds=60))
    for _ in range(2):
        registry.get("acct_a").record(False)
    assert not registry.get("acct_a").allow()
    registry.reset()
    assert registry.get("acct_a").allow()
    assert registry.get("acct_a").snapshot()["total_calls"] == 0
