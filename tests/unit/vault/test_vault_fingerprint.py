from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paygate.kit.secret import Secret
from paygate.vault.fingerprint import card_fingerprint

SECRET = b"s" * 32
OTHER_SECRET = b"t" * 32


def test_fingerprint_is_stable_for_the_same_card_and_merchant() -> None:
    a = card_fingerprint("4242424242424242", secret=SECRET, merchant_id="acct_1")
    b = card_fingerprint("4242 4242-4242 4242", secret=SECRET, merchant_id="acct_1")
    assert a == b
    assert re.fullmatch(r"[0-9A-Za-z]{16}", a)


def test_fingerprint_changes_with_the_vault_secret() -> None:
    assert card_fingerprint("4242424242424242", secret=SECRET, merchant_id="m") != card_fingerprint(
        "4242424242424242", secret=OTHER_SECRET, merchant_id="m"
    )


def test_fingerprint_is_scoped_to_the_merchant() -> None:
    assert card_fingerprint("4242424242424242", secret=SECRET, merchant_id="acct_1") != card_fingerprint(
        "4242424242424242", secret=SECRET, merchant_id="acct_2"
    )


def test_fingerprint_covers_the_whole_pan() -> None:
    # same BIN and last 4, different middle digits
    assert card_fingerprint("4242420000004242", secret=SECRET, merchant_id="m") != card_fingerprint(
        "4242421111114242", secret=SECRET, merchant_id="m"
    )


def test_fingerprint_is_not_a_plain_hash_and_does_not_leak_digits() -> None:
    pan = "4242424242424242"
    fp = card_fingerprint(pan, secret=SECRET, merchant_id="m")
    assert fp not in hashlib.sha256(pan.encode()).hexdigest()
    assert "4242" not in fp


def test_secret_wrapper_is_accepted_and_short_secrets_are_refused() -> None:
    assert card_fingerprint("4242424242424242", secret=Secret("x" * 32), merchant_id="m") == card_fingerprint(
        "4242424242424242", secret=b"x" * 32, merchant_id="m"
    )
    with pytest.raises(ValueError, match="at least 32 bytes"):
        card_fingerprint("4242424242424242", secret=b"short", merchant_id="m")
    with pytest.raises(ValueError):
        card_fingerprint("4242abcd", secret=SECRET, merchant_id="m")
    with pytest.raises(ValueError):
        card_fingerprint("4242424242424242", secret=SECRET, merchant_id="")


@given(
    st.text(alphabet="0123456789", min_size=12, max_size=19),
    st.text(alphabet="0123456789", min_size=12, max_size=19),
)
def test_distinct_cards_get_distinct_fingerprints(a: str, b: str) -> None:
    fa = card_fingerprint(a, secret=SECRET, merchant_id="m")
    fb = card_fingerprint(b, secret=SECRET, merchant_id="m")
    assert (fa == fb) == (a == b)
