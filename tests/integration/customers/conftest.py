"""Customer tests tokenize cards too: same private key file as the vault tests."""

from tests.integration.vault._support import isolate_vault_keys

isolate_vault_keys()
