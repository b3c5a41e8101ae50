"""The Luhn mod-10 check, shared by the vault's card validation, the redactor and the test-card table."""

from __future__ import annotations

__all__ = ["luhn_valid"]


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (ASCII digits only, at least 2 of them) passes the Luhn mod-10 check."""
    if len(digits) < 2 or not (digits.isascii() and digits.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
