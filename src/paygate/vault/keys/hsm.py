"""PKCS#11 key provider: KEKs generated and kept inside an HSM (tested with SoftHSM2 2.6).

Each KEK version is an AES-256 secret key object created *inside* the token with ``CKA_TOKEN=true``,
``CKA_SENSITIVE=true``, ``CKA_EXTRACTABLE=false`` and ``CKA_LABEL = CKA_ID = "<namespace>:v<version>"``; the
key value never leaves the HSM (PCI DSS 3.6.1, 3.7.1).

Wrapping mechanism -- ``CKM_AES_GCM`` encryption of the DEK bytes inside the token, with a 96-bit random nonce
and the KEK id as associated data, stored as ``nonce(12) || ciphertext(32) || tag(16)`` (the same layout as
the file provider). ``CKM_AES_KEY_WRAP_PAD`` via ``C_WrapKey`` would need the DEK imported into the token as a
key object first (one extra object create/destroy per card) and cannot bind the KEK id; SoftHSM2 supports
AES-GCM for ``C_Encrypt``/``C_Decrypt`` with caller-supplied IVs, as do the common network HSMs. The DEK is
plaintext in host memory only while a record is sealed or opened -- inherent to envelope encryption with
software data keys.

Concurrency: one logged-in R/W session per (library, token) per process, shared by every provider and used
under a lock (PKCS#11 login state is per application, and sessions are not safe for concurrent operations).
A closed session (token reset, HSM fail-over) is reopened once per call. For throughput beyond one HSM round
trip at a time, run more processes (each has its own session).

Errors: tag / ciphertext failures become ``VaultIntegrityError``; PIN, token and device failures become
``KeyProviderError``; an id whose object is absent from the token is ``UnknownKekError``.

Rotation must be run by one operator at a time (``paygate vault rotate-kek``): the token cannot lock a label,
so two concurrent rotations could create two objects with the same label; the provider detects that and
refuses to use the ambiguous version rather than guessing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
    NoSuchToken,
    PKCS11Error,
    SessionClosed,
    SessionHandleInvalid,
)
from pkcs11.mechanisms import GCMParams
from pkcs11.types import DecryptMixin, EncryptMixin

from paygate.kit.secret import Secret
from paygate.vault.errors import KeyProviderError, UnknownKekError, VaultIntegrityError
from paygate.vault.keys.base import DEK_BYTES, format_kek_id, parse_kek_id

__all__ = ["DEFAULT_SOFTHSM_LIBRARY", "Pkcs11KeyProvider", "close_sessions"]

DEFAULT_SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
_NONCE = 12
_TAG_BITS = 128

T = TypeVar("T")


class _SharedSession:
    """One logged-in R/W session per (library, token) per process.

    PKCS#11 login state belongs to the application, not the session: a second ``C_Login`` fails with
    ``CKR_USER_ALREADY_LOGGED_IN`` and closing any logged-in session via python-pkcs11 logs every session out.
    So all providers of a process that use the same token share this session and its lock.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.session: pkcs11.Session | None = None
        self.pin: Secret | None = None
        self.generation = 0


_SHARED: dict[tuple[str, str], _SharedSession] = {}
_SHARED_LOCK = threading.Lock()


def _shared_session(library: str, token_label: str) -> _SharedSession:
    with _SHARED_LOCK:
        return _SHARED.setdefault((library, token_label), _SharedSession())


def close_sessions() -> None:
    """Log out and close every shared token session of this process (shutdown, tests).

    Providers reopen a session lazily on their next call.
    """
    with _SHARED_LOCK:
        shared = list(_SHARED.values())
    for entry in shared:
        with entry.lock:
            if entry.session is not None:
                with contextlib.suppress(PKCS11Error):
                    entry.session.close()
            entry.session, entry.pin = None, None


class Pkcs11KeyProvider:
    """KEKs inside a PKCS#11 token. See the module docstring for mechanism, attributes and error mapping.

    ``library`` is the PKCS#11 module path; ``token_label`` selects the token; ``pin`` is the user PIN
    (a :class:`~paygate.kit.secret.Secret` from settings). For SoftHSM2, ``SOFTHSM2_CONF`` must be set in the
    environment before the first provider of the process is created (the library reads it once).
    """

    def __init__(
        self,
        library: str,
        *,
        token_label: str,
        pin: Secret | str,
        namespace: str = "paygate-kek",
    ) -> None:
        format_kek_id(namespace, 1)  # validate early
        self._library = library
        self._token_label = token_label
        self._pin = pin if isinstance(pin, Secret) else Secret(pin)
        self._namespace = namespace
        self._shared = _shared_session(library, token_label)
        self._lock = self._shared.lock
        self._keys: dict[int, pkcs11.SecretKey] = {}
        self._generation = 0

    def __repr__(self) -> str:
        return (
            f"Pkcs11KeyProvider(library={self._library!r}, token_label={self._token_label!r}, "
            f"namespace={self._namespace!r})"
        )

    # -- KeyProvider -------------------------------------------------------------------------------------

    def current_kek_id(self) -> str:
        return format_kek_id(self._namespace, self._call(self._current_version))

    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        if len(dek) != DEK_BYTES:
            raise ValueError("DEK must be 32 bytes")

        def op() -> tuple[str, bytes]:
            version = self._current_version()
            kek_id = format_kek_id(self._namespace, version)
            nonce = os.urandom(_NONCE)
            params = GCMParams(nonce, kek_id.encode(), _TAG_BITS)
            key = self._keys[version]
            if not isinstance(key, EncryptMixin):
                raise KeyProviderError("KEK object does not support encryption")
            out = key.encrypt(bytes(dek), mechanism=Mechanism.AES_GCM, mechanism_param=params)
            if not isinstance(out, bytes):
                raise KeyProviderError("unexpected PKCS#11 encrypt result")
            return kek_id, nonce + out

        return self._call(op)

    def unwrap(self, kek_id: str, wrapped: bytes) -> bytes:
        namespace, version = parse_kek_id(kek_id)
        if namespace != self._namespace:
            raise UnknownKekError("record was sealed under a different key namespace")
        if len(wrapped) != _NONCE + DEK_BYTES + _TAG_BITS // 8:
            raise VaultIntegrityError("wrapped data key has the wrong length")

        def op() -> bytes:
            key = self._key(version)
            if not isinstance(key, DecryptMixin):
                raise KeyProviderError("KEK object does not support decryption")
            params = GCMParams(wrapped[:_NONCE], kek_id.encode(), _TAG_BITS)
            try:
                dek = key.decrypt(wrapped[_NONCE:], mechanism=Mechanism.AES_GCM, mechanism_param=params)
            except (GeneralError, EncryptedDataInvalid, EncryptedDataLenRange):
                raise VaultIntegrityError("wrapped data key failed authentication") from None
            if not isinstance(dek, bytes) or len(dek) != DEK_BYTES:
                raise VaultIntegrityError("unwrapped data key has the wrong length")
            return dek

        return self._call(op)

    def rotate(self) -> str:
        def op() -> str:
            self._refresh()
            version = max(self._keys, default=0) + 1
            self._generate(version)
            return format_kek_id(self._namespace, version)

        return self._call(op)

    def kek_ids(self) -> list[str]:
        def op() -> list[str]:
            self._refresh()
            return [format_kek_id(self._namespace, v) for v in sorted(self._keys)]

        return self._call(op)

    def close(self) -> None:
        """Forget cached key handles. The token session is shared per process; see :func:`close_sessions`."""
        with self._lock:
            self._keys = {}

    # -- internals ---------------------------------------------------------------------------------------

    def _call(self, op: Callable[[], T]) -> T:
        """Run ``op`` holding the lock with an open session; reopen once if the session was lost."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._open()
                    return op()
                except (SessionClosed, SessionHandleInvalid):
                    self._shared.session, self._shared.pin, self._keys = None, None, {}
                    if attempt == 2:
                        raise KeyProviderError("PKCS#11 session lost") from None
                except (VaultIntegrityError, KeyProviderError):
                    raise
                except PKCS11Error as exc:
                    raise KeyProviderError(f"PKCS#11 operation failed: {type(exc).__name__}") from None
            raise AssertionError("unreachable")

    def _open(self) -> None:
        shared = self._shared
        if shared.session is not None:
            if shared.pin != self._pin:
                raise KeyProviderError("PKCS#11 token is already logged in with different credentials")
            if shared.generation != self._generation:
                self._keys, self._generation = {}, shared.generation  # handles from an old session are stale
            return
        try:
            lib = pkcs11.lib(self._library)
            token = lib.get_token(token_label=self._token_label)
        except NoSuchToken:
            raise KeyProviderError(f"PKCS#11 token {self._token_label!r} not found") from None
        except PKCS11Error as exc:
            raise KeyProviderError(f"cannot load PKCS#11 library {self._library}: {type(exc).__name__}") from None
        try:
            shared.session = token.open(user_pin=self._pin.reveal(), rw=True)
        except PKCS11Error as exc:
            raise KeyProviderError(f"cannot log in to PKCS#11 token: {type(exc).__name__}") from None
        shared.pin = self._pin
        shared.generation += 1
        self._keys, self._generation = {}, shared.generation
        self._refresh()

    def _session_or_fail(self) -> pkcs11.Session:
        if self._shared.session is None:
            raise KeyProviderError("PKCS#11 session is not open")
        return self._shared.session

    def _refresh(self) -> None:
        """Reload the version -> key-object map from the token (another process may have rotated)."""
        session = self._session_or_fail()
        found: dict[int, list[pkcs11.SecretKey]] = {}
        attrs = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        for obj in session.get_objects(attrs):
            label = obj[Attribute.LABEL]
            if not isinstance(label, str) or not label.startswith(self._namespace + ":v"):
                continue
            try:
                namespace, version = parse_kek_id(label)
            except UnknownKekError:
                continue
            if namespace == self._namespace and isinstance(obj, pkcs11.SecretKey):
                found.setdefault(version, []).append(obj)
        duplicated = sorted(v for v, objs in found.items() if len(objs) > 1)
        if duplicated:
            raise KeyProviderError(f"token holds several KEK objects for versions {duplicated}; fix by hand")
        self._keys = {v: objs[0] for v, objs in found.items()}

    def _current_version(self) -> int:
        if not self._keys:
            self._refresh()
        if not self._keys:
            self._generate(1)
        return max(self._keys)

    def _key(self, version: int) -> pkcs11.SecretKey:
        if version not in self._keys:
            self._refresh()
        key = self._keys.get(version)
        if key is None:
            raise UnknownKekError("KEK version not present in the token")
        return key

    def _generate(self, version: int) -> None:
        session = self._session_or_fail()
        kek_id = format_kek_id(self._namespace, version)
        session.generate_key(
            KeyType.AES,
            256,
            id=kek_id.encode(),
            label=kek_id,
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.MODIFIABLE: False,
            },
        )
        self._refresh()
