"""The double-entry ledger: append-only journals whose postings sum to zero per currency."""
