"""Ledger account names. An account is a string; its balance is the sum of its postings.

Sign convention: debits are positive, credits negative, so every journal sums to zero.

* ``processor:<name>:receivable`` — money a processor has collected for us and owes us (asset).
* ``merchant:<id>:balance`` — money paygate owes the merchant (liability; a credit balance, i.e. negative).
"""

from __future__ import annotations

__all__ = ["merchant_balance", "processor_receivable"]


def merchant_balance(merchant_id: str) -> str:
    return f"merchant:{merchant_id}:balance"


def processor_receivable(processor: str) -> str:
    return f"processor:{processor}:receivable"
