"""Stripe-style idempotent requests, designed so a crash at any point never repeats a money movement."""
