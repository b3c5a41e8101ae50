"""Small shared building blocks with no domain knowledge: money, ids, errors, clock, secrets, forms."""
