"""Object ids: Stripe-style prefix, fixed length, unguessable, and sortable by creation time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit import ids
from paygate.kit.ids import new_id, new_secret

ID_RE = re.compile(r"^[a-z]+_[0-9A-Za-z]{24}$")


@pytest.mark.parametrize("prefix", ["pi", "ch", "re", "evt", "acct", "req"])
def test_new_id_has_prefix_underscore_and_24_base62_chars(prefix: str) -> None:
    value = new_id(prefix)
    assert value.startswith(f"{prefix}_")
    assert len(value) == len(prefix) + 1 + 24
    assert ID_RE.match(value)


def test_ten_thousand_ids_are_unique() -> None:
    batch = [new_id("pi") for _ in range(10_000)]
    assert len(set(batch)) == 10_000


def test_ids_created_in_the_same_millisecond_differ_in_their_random_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    batch = [new_id("pi") for _ in range(1000)]
    assert len({b[:11] for b in batch}) == 1  # same time prefix
    assert len(set(batch)) == 1000


def test_ids_sort_by_creation_time_across_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    now_ms = [1_700_000_000_000]
    monkeypatch.setattr(time, "time_ns", lambda: now_ms[0] * 1_000_000)
    created = []
    for step in (1, 1, 7, 61, 62, 3843, 1000, 86_400_000, 1):
        now_ms[0] += step
        created.append(new_id("pi"))
    assert sorted(created) == created


@given(a=st.integers(min_value=0, max_value=62**8 - 2), delta=st.integers(min_value=1, max_value=10**9))
def test_time_prefix_order_matches_numeric_order(a: int, delta: int) -> None:
    b = min(a + delta, 62**8 - 1)
    assert ids._b62(a, 8) < ids._b62(b, 8)


def test_time_prefix_covers_current_and_far_future_milliseconds() -> None:
    assert 62**8 > 5_000_000_000_000  # year ~2128 in unix ms still fits in 8 base62 characters


def test_new_secret_has_prefix_and_at_least_190_bits() -> None:
    key = new_secret("sk_test")
    assert key.startswith("sk_test_")
    body = key.removeprefix("sk_test_")
    assert re.fullmatch(r"[0-9A-Za-z]+", body)
    assert len(body) >= 32  # 24 random bytes in base62
    assert len({new_secret("sk_test") for _ in range(1000)}) == 1000


@given(ms=st.integers(min_value=0, max_value=62**9))
def test_time_prefix_is_the_eight_low_base62_digits_of_the_millisecond(ms: int) -> None:
    assert ids._time_prefix(ms) == ids._b62(ms, 8)


def test_random_part_uses_every_base62_character_about_equally() -> None:
    counts: dict[str, int] = {}
    for _ in range(4000):
        for ch in new_id("pi")[-16:]:
            counts[ch] = counts.get(ch, 0) + 1
    assert set(counts) == set(ids._ALPHABET)
    expected = 4000 * 16 / 62  # ~1032 per character (sd ~32); byte % 62 would give the first 8 about 1250
    assert all(0.8 * expected < n < 1.2 * expected for n in counts.values())


def test_random_part_draws_again_when_too_many_random_bytes_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([bytes([255] * 10 + [0] * 14), bytes(range(24))])  # 14 usable, then 24 usable
    monkeypatch.setattr(ids.os, "urandom", lambda n: next(draws))
    assert new_id("pi")[-16:] == ids._ALPHABET[:16]
