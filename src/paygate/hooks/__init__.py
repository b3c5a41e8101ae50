"""Inbound processor webhooks: receive, verify, dedupe, apply (see :mod:`paygate.hooks.service`)."""
