"""Vault integration tests run against the shared HTTP server with a private key file (see _support)."""

from tests.integration.vault._support import isolate_vault_keys

isolate_vault_keys()
