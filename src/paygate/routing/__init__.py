"""Choosing the processor (connector + account) for each payment attempt."""
