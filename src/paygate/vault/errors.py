"""Vault exceptions.

Hierarchy::

    VaultError
    ├── CardValidationError        the caller sent bad card data (maps to a Stripe 402 ``card_error``)
    ├── VaultIntegrityError        a sealed record failed authentication: tampered, wrong AAD, wrong key.
    │   └── UnknownKekError        the record names a KEK the provider does not hold (misconfig or tampering)
    └── KeyProviderError           key infrastructure failure (key file, HSM); not evidence of tampering
        └── KeyFilePermissionError the key file is readable or writable by group/others

Messages never contain card data or key material.
"""

from __future__ import annotations

__all__ = [
    "CardValidationError",
    "KeyFilePermissionError",
    "KeyProviderError",
    "UnknownKekError",
    "VaultError",
    "VaultIntegrityError",
]


class VaultError(Exception):
    """Base class of every vault error."""


class CardValidationError(VaultError):
    """Card data rejected before it reaches the vault.

    ``code`` is the Stripe error code (``incorrect_number``, ``invalid_number``, ``invalid_expiry_month``,
    ``invalid_expiry_year``, ``invalid_cvc``), ``param`` the Stripe request parameter (``card[number]`` ...),
    ``message`` a customer-safe sentence. None of them ever contains the submitted value.
    """

    def __init__(self, code: str, param: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param
        self.message = message

    def __repr__(self) -> str:
        return f"CardValidationError(code={self.code!r}, param={self.param!r}, message={self.message!r})"


class VaultIntegrityError(VaultError):
    """A sealed record could not be authenticated. The vault fails closed: no plaintext is returned."""


class UnknownKekError(VaultIntegrityError):
    """The record references a key-encrypting key id the provider does not know."""


class KeyProviderError(VaultError):
    """The key provider could not do its job (missing/unsafe key file, HSM unavailable, bad PIN)."""


class KeyFilePermissionError(KeyProviderError):
    """The KEK file is accessible to group or others (mode must be 0600 or stricter)."""
