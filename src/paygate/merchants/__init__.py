"""Merchants, their API keys, and request authentication."""
