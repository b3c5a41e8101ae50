"""Object ids in Stripe's style: a type prefix and 24 base62 characters.

The first 8 characters encode the creation time in milliseconds, so ids of one type sort roughly by creation;
the remaining 16 are random (~95 bits), so ids are unguessable.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id", "new_secret"]

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_SPACE = 62**16  # the 16 random characters: one uniform draw below this (~95 bits), not 16 draws


def _b62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """``new_id("pi") -> "pi_0dKx3QmA7bQ9...`` (prefix, underscore, 24 characters)."""
    ms = time.time_ns() // 1_000_000
    return f"{prefix}_{_b62(ms, 8)}{_b62(secrets.randbelow(_RANDOM_SPACE), 16)}"


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A high-entropy secret such as an API key: ``sk_test_<base62>``."""
    n = int.from_bytes(secrets.token_bytes(nbytes), "big")
    return f"{prefix}_{_b62(n, (nbytes * 8 + 5) // 6 + 1)}"
