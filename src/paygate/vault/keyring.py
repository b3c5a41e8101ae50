"""Build the vault's key provider and fingerprint secret from :class:`~paygate.settings.Settings`.

* ``PAYGATE_VAULT_KEY_PROVIDER=file`` (default): :class:`~paygate.vault.keys.file.FileKeyProvider` at
  ``PAYGATE_VAULT_KEY_FILE`` (default ``var/vault-keys.json``, created 0600 on first use).
* ``PAYGATE_VAULT_KEY_PROVIDER=pkcs11``: :class:`~paygate.vault.keys.hsm.Pkcs11KeyProvider` with
  ``PAYGATE_VAULT_PKCS11_LIBRARY`` / ``_TOKEN_LABEL`` / ``_PIN`` / ``_NAMESPACE``. The PKCS#11 module is
  imported only in this case.

Fingerprint secret: ``PAYGATE_VAULT_SECRET`` when set (at least 32 bytes). Otherwise a random 256-bit secret is
generated on first use into ``PAYGATE_VAULT_SECRET_FILE`` (default: ``<key file>.secret``), created atomically
with mode 0600 and refused afterwards if group/others can access it. The secret is separate from the KEKs (it is
never rotated with them: changing it changes every fingerprint) and must be backed up with the key file.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from pathlib import Path

from paygate.kit.secret import Secret
from paygate.settings import Settings
from paygate.vault.errors import KeyFilePermissionError, KeyProviderError
from paygate.vault.fingerprint import MIN_SECRET_BYTES
from paygate.vault.keys.base import KeyProvider
from paygate.vault.keys.file import FileKeyProvider

__all__ = ["build_provider", "fingerprint_secret", "load_or_create_secret"]


def build_provider(settings: Settings) -> KeyProvider:
    """The configured KEK provider. Raises ``KeyProviderError`` for an incomplete PKCS#11 configuration."""
    if settings.vault_key_provider == "pkcs11":
        if not settings.vault_pkcs11_pin:
            raise KeyProviderError("PAYGATE_VAULT_PKCS11_PIN is required with PAYGATE_VAULT_KEY_PROVIDER=pkcs11")
        from paygate.vault.keys.hsm import Pkcs11KeyProvider

        return Pkcs11KeyProvider(
            settings.vault_pkcs11_library,
            token_label=settings.vault_pkcs11_token_label,
            pin=Secret(settings.vault_pkcs11_pin),
            namespace=settings.vault_pkcs11_namespace,
        )
    return FileKeyProvider(settings.vault_key_file)


def fingerprint_secret(settings: Settings) -> Secret:
    """The fingerprint HMAC secret (see the module docstring for where it comes from)."""
    if settings.vault_secret:
        if len(settings.vault_secret.encode()) < MIN_SECRET_BYTES:
            raise KeyProviderError(f"PAYGATE_VAULT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return Secret(settings.vault_secret)
    path = Path(settings.vault_secret_file or settings.vault_key_file + ".secret")
    return load_or_create_secret(path)


def load_or_create_secret(path: Path) -> Secret:
    """Read the base64 secret at ``path``; create it (0600, atomically, O_EXCL) when absent."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        with contextlib.suppress(FileExistsError):  # a concurrent first start won: use its secret
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read_secret(path)


def _read_secret(path: Path) -> Secret:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFilePermissionError(f"vault secret file {path} is not a regular file")
        if st.st_mode & 0o077 or st.st_uid != os.geteuid():
            raise KeyFilePermissionError(
                f"vault secret file {path} must be owned by this user with mode 0600 (chmod 600 {path})"
            )
        data = os.read(fd, 4096).strip()
    finally:
        os.close(fd)
    if len(data) < 43:  # base64 of 32 bytes
        raise KeyProviderError(f"vault secret file {path} is malformed")
    return Secret(data.decode("ascii"))
