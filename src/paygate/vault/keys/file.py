"""File key provider: versioned KEKs in a local JSON file (the default for laptops and single hosts).

File format (UTF-8 JSON, mode 0600)::

    {"format": "paygate-kek-file", "format_version": 1, "namespace": "file-3f9a2c1b", "current": 2,
     "keys": {"1": {"key": "<base64 32 bytes>", "created_at": "2026-01-01T00:00:00Z"}, "2": {...}}}

Safety rules enforced here:

* Created on first use with ``O_CREAT | O_EXCL`` and mode 0600 via a temp file + ``link`` (atomic: concurrent
  first starts agree on one file, and nobody reads a half-written file).
* Refused (``KeyFilePermissionError``) when group or others have any permission bit, or when it is a symlink,
  or not owned by the current user. Fix with ``chmod 600``; never loosen this check.
* ``rotate`` re-reads the file under an exclusive ``flock`` before adding a version and replaces it
  atomically, so two concurrent rotations cannot lose a version (losing one would make records unreadable).
* A process that meets a KEK id it has not loaded (another process rotated) reloads the file once.

Wrapping algorithm -- AES-256-GCM, not AES-KW (RFC 3394 / ``aes_key_wrap``):
AES-KW is deterministic and carries a 64-bit integrity check value; it cannot authenticate context. AES-GCM
with a fresh 96-bit random nonce gives a 128-bit tag and lets us bind the KEK id as associated data, so a
wrapped DEK copied onto a record that claims another KEK version fails closed. It is also the mechanism the
PKCS#11 provider uses inside the HSM, so both providers produce the same wrapped layout ``nonce(12) ||
ciphertext(32) || tag(16)``. Random nonces are safe for far fewer than 2**32 wraps per KEK (NIST SP 800-38D);
one wrap per stored card plus rewraps stays orders of magnitude below that, and rotation starts a fresh key
anyway.

Keeping KEKs in a file on the application host is acceptable for development and small deployments only when
the file lives outside the database backups and is readable only by the service account (PCI DSS
3.6.1.2/3.6.1.3). Use the PKCS#11 provider where an HSM or cloud HSM is available.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from paygate.vault.errors import (
    KeyFilePermissionError,
    KeyProviderError,
    UnknownKekError,
    VaultIntegrityError,
)
from paygate.vault.keys.base import DEK_BYTES, format_kek_id, parse_kek_id

__all__ = ["FileKeyProvider"]

_FORMAT = "paygate-kek-file"
_NONCE = 12
_KEK_BYTES = 32


class FileKeyProvider:
    """KEKs in a 0600 JSON file at ``path`` (created on first use). Thread-safe; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self._path = Path(path)
        self._create = create
        self._lock = threading.RLock()
        self._namespace = ""
        self._current = 0
        self._keys: dict[int, AESGCM] = {}
        self._loaded = False

    def __repr__(self) -> str:
        return f"FileKeyProvider(path={str(self._path)!r}, loaded_versions={sorted(self._keys)})"

    @property
    def path(self) -> Path:
        return self._path

    # -- KeyProvider -------------------------------------------------------------------------------------

    def current_kek_id(self) -> str:
        with self._lock:
            self._ensure_loaded()
            return format_kek_id(self._namespace, self._current)

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        if len(dek) != DEK_BYTES:
            raise ValueError("DEK must be 32 bytes")
        with self._lock:
            self._ensure_loaded()
            kek_id = format_kek_id(self._namespace, self._current)
            aead = self._keys[self._current]
        nonce = os.urandom(_NONCE)
        return kek_id, nonce + aead.encrypt(nonce, bytes(dek), kek_id.encode())

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        namespace, version = parse_kek_id(kek_id)
        with self._lock:
            self._ensure_loaded()
            if namespace != self._namespace:
                raise UnknownKekError("record was sealed under a different key set")
            if version not in self._keys:
                self._load()  # another process may have rotated since we loaded
            aead = self._keys.get(version)
        if aead is None:
            raise UnknownKekError("KEK version not present in the key file")
        if len(wrapped) != _NONCE + DEK_BYTES + 16:
            raise VaultIntegrityError("wrapped data key has the wrong length")
        try:
            dek = aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], kek_id.encode())
        except InvalidTag:
            raise VaultIntegrityError("wrapped data key failed authentication") from None
        return dek

    def rotate(self) -> str:
        with self._lock, self._locked_file():
            doc = self._read_doc()
            if doc is None:
                doc = self._new_doc()
            versions = [int(v) for v in doc["keys"]]
            new_version = max(versions) + 1
            doc["keys"][str(new_version)] = _new_key_entry()
            doc["current"] = new_version
            self._write_doc(doc, replace=True)
            self._apply(doc)
            return format_kek_id(self._namespace, new_version)

    def kek_ids(self) -> list[str]:
        with self._lock:
            self._ensure_loaded()
            return [format_kek_id(self._namespace, v) for v in sorted(self._keys)]

    # -- loading -----------------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._load()

    def _load(self) -> None:
        doc = self._read_doc()
        if doc is None:
            if not self._create:
                raise KeyProviderError(f"KEK file {self._path} does not exist")
            with self._locked_file():  # same lock as rotate: creation and rotation never interleave
                doc = self._read_doc()
                if doc is None:
                    doc = self._new_doc()
                    if not self._write_doc(doc, replace=False):
                        doc = self._read_doc()  # lost a race with a writer outside the lock: use its file
                if doc is None:
                    raise KeyProviderError(f"KEK file {self._path} vanished during creation")
        self._apply(doc)

    def _apply(self, doc: dict[str, Any]) -> None:
        try:
            namespace = str(doc["namespace"])
            keys: dict[int, AESGCM] = {}
            for version, entry in doc["keys"].items():
                raw = base64.b64decode(entry["key"], validate=True)
                if len(raw) != _KEK_BYTES:
                    raise ValueError("bad key length")
                keys[int(version)] = AESGCM(raw)
            current = int(doc["current"])
            format_kek_id(namespace, current)
        except (KeyError, TypeError, ValueError, binascii.Error, AttributeError) as exc:
            raise KeyProviderError(f"KEK file {self._path} is malformed") from exc
        if doc.get("format") != _FORMAT or current not in keys:
            raise KeyProviderError(f"KEK file {self._path} is malformed")
        self._namespace, self._current, self._keys, self._loaded = namespace, current, keys, True

    def _read_doc(self) -> dict[str, Any] | None:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyProviderError(f"cannot open KEK file {self._path}: {exc.strerror}") from None
        try:
            _check_permissions(self._path, os.fstat(fd))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read()
        finally:
            os.close(fd)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise KeyProviderError(f"KEK file {self._path} is not valid JSON") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise KeyProviderError(f"KEK file {self._path} is malformed")
        return doc

    def _new_doc(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "format_version": 1,
            "namespace": f"file-{secrets.token_hex(4)}",
            "current": 1,
            "keys": {"1": _new_key_entry()},
        }

    def _write_doc(self, doc: dict[str, Any], *, replace: bool) -> bool:
        """Write ``doc`` atomically with mode 0600. With ``replace=False`` returns False if the file
        exists."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f".{self._path.name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # umask cannot loosen it, but be explicit
            with os.fdopen(fd, "wb", closefd=False) as fh:
                fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            os.close(fd)
        try:
            if replace:
                os.replace(tmp, self._path)
            else:
                try:
                    os.link(tmp, self._path)
                except FileExistsError:
                    return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    @contextlib.contextmanager
    def _locked_file(self) -> Iterator[None]:
        """Exclusive inter-process lock for read-modify-write (a sidecar ``.lock`` file, also 0600)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self._path.with_name(self._path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _new_key_entry() -> dict[str, str]:
    return {
        "key": base64.b64encode(secrets.token_bytes(_KEK_BYTES)).decode(),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _check_permissions(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise KeyFilePermissionError(f"KEK file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFilePermissionError(
            f"KEK file {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be accessible to group or "
            f"others. Run: chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyFilePermissionError(f"KEK file {path} is not owned by the user running paygate")
