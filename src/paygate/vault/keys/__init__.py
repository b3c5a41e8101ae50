"""Key providers: where the key-encrypting keys (KEKs) live.

``base`` defines the :class:`~paygate.vault.keys.base.KeyProvider` protocol and KEK id helpers; ``file`` is
the default provider (a 0600 JSON key file); ``hsm`` talks PKCS#11 to an HSM (SoftHSM2 in tests). ``hsm`` is
not imported here so that processes configured with the file provider never load ``python-pkcs11``.
"""

from paygate.vault.keys.base import DEK_BYTES, KeyProvider, format_kek_id, parse_kek_id
from paygate.vault.keys.file import FileKeyProvider

__all__ = ["DEK_BYTES", "FileKeyProvider", "KeyProvider", "format_kek_id", "parse_kek_id"]
