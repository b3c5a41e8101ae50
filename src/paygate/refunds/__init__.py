"""Refunds: full or partial, several per payment, never more than was captured."""
