"""The ``KeyProvider`` seam: where key-encrypting keys (KEKs) live.

A provider holds a set of *versioned* KEKs. Exactly one version is current; new data keys (DEKs) are wrapped
under it. Older versions are kept forever (until an operator retires them after a full ``rewrap``) so that
records sealed before a rotation keep decrypting.

KEK ids are strings ``"<namespace>:v<version>"`` (for example ``"file-3f9a2c1b:v2"`` or ``"paygate-kek:v7"``):
the namespace tells which key set a record belongs to (a record sealed under another key file fails with
:class:`~paygate.vault.errors.UnknownKekError` instead of an opaque tag failure), and the version is stored in
its own column by the vault so "how many records still use an old KEK" is a cheap query.

Provider contract (both implementations follow it and share one test suite):

* ``wrap(dek)`` encrypts a 32-byte DEK under the current KEK and authenticates it together with the KEK id.
* ``unwrap(kek_id, wrapped)`` returns the DEK, or raises ``VaultIntegrityError`` when the wrapped bytes fail
  authentication, ``UnknownKekError`` when the id is not held, ``KeyProviderError`` for infrastructure faults.
  It never returns wrong bytes.
* ``rotate()`` creates a new version, makes it current and returns its id; it never deletes a version.
* Providers are safe to share between threads.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from paygate.vault.errors import UnknownKekError

__all__ = ["DEK_BYTES", "KeyProvider", "format_kek_id", "parse_kek_id"]

DEK_BYTES = 32  # AES-256 data keys

_KEK_ID = re.compile(r"^(?P<ns>[A-Za-z0-9._-]{1,64}):v(?P<ver>[1-9][0-9]{0,8})$")


def format_kek_id(namespace: str, version: int) -> str:
    """Build a KEK id; ``namespace`` is 1-64 chars of ``[A-Za-z0-9._-]`` and ``version`` >= 1."""
    kek_id = f"{namespace}:v{version}"
    if not _KEK_ID.match(kek_id):
        raise ValueError("invalid KEK namespace or version")
    return kek_id


def parse_kek_id(kek_id: str) -> tuple[str, int]:
    """Split a KEK id into ``(namespace, version)``; a malformed id raises ``UnknownKekError``."""
    match = _KEK_ID.match(kek_id)
    if match is None:
        raise UnknownKekError("malformed KEK id")
    return match["ns"], int(match["ver"])


@runtime_checkable
class KeyProvider(Protocol):
    """Holds versioned KEKs and wraps / unwraps data keys with them. See the module docstring for the
    contract."""

    def current_kek_id(self) -> str:
        """Id of the KEK new DEKs are wrapped under (creating the first version if the key set is empty)."""
        ...

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        """Wrap ``dek`` under the current KEK; returns ``(kek_id, wrapped_bytes)``."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        """Recover the DEK wrapped under ``kek_id``; fails closed (see module docstring)."""
        ...

    def rotate(self) -> str:
        """Create a new KEK version, make it current and return its id. Old versions stay usable for
        unwrap."""
        ...

    def kek_ids(self) -> list[str]:
        """Every KEK id held, oldest version first."""
        ...
