"""Processor accounts (a merchant's credentials at a PSP), routing rules and circuit-breaker health."""
