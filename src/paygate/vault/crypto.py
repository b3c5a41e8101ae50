"""Envelope encryption of card data (PCI DSS 3.5.1, 3.6, 3.7).

Key hierarchy::

    KEK (file or HSM, versioned)  --wraps-->  DEK (fresh 256-bit key per record)  --seals-->  card payload

* Every record gets a fresh random 256-bit DEK; the payload is sealed with AES-256-GCM under a fresh random
  96-bit nonce. One DEK encrypts exactly one message, so nonce reuse under a key cannot happen.
* Associated data binds the ciphertext to its context: ``b"paygate/vault/card/v1"`` followed by the
  length-prefixed token id and merchant id. A ciphertext copied onto another token or merchant fails
  authentication. The envelope format version ("v1") is part of the AAD. The KEK id/version is deliberately
  *not* in the payload AAD: rotation (:func:`rewrap`) must leave the ciphertext untouched. The KEK id is
  instead authenticated by the wrap itself (both providers use it as the AAD of the DEK wrap), so editing
  ``kek_id``/``kek_version`` also fails closed.
* Opening never returns unauthenticated data: any mismatch raises
  :class:`~paygate.vault.errors.VaultIntegrityError` (or its subclass ``UnknownKekError``).
* The CVC is never sealed (PCI DSS 3.3.1.2): :func:`seal_card` has no CVC parameter.

Python cannot reliably wipe memory; plaintext PAN/DEK bytes live in ordinary objects until garbage-collected.
Keep their lifetime short (open, authorize, drop) rather than relying on zeroisation.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from paygate.connectors.base import CardData
from paygate.vault.errors import VaultIntegrityError
from paygate.vault.keys.base import DEK_BYTES, KeyProvider, parse_kek_id

__all__ = [
    "SealedCard",
    "needs_rewrap",
    "open_card",
    "open_sealed",
    "record_aad",
    "rewrap",
    "seal",
    "seal_card",
]

NONCE_BYTES = 12
TAG_BYTES = 16
_FORMAT_V1 = 1
_AAD_PREFIX = b"paygate/vault/card/v1"
_HEADER = struct.Struct(">BB")  # format, len(kek_id)
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class SealedCard:
    """The at-rest form of one vaulted card: store all five fields (or :meth:`to_bytes`) with the token row.

    ``kek_version`` duplicates the version inside ``kek_id`` so a query can find records on old KEKs; the two
    must agree or opening fails. ``repr`` shows ids and lengths only.
    """

    kek_id: str
    kek_version: int
    wrapped_dek: bytes
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return (
            f"SealedCard(kek_id={self.kek_id!r}, kek_version={self.kek_version}, "
            f"wrapped_dek=<{len(self.wrapped_dek)} bytes>, nonce=<{len(self.nonce)} bytes>, "
            f"ciphertext=<{len(self.ciphertext)} bytes>)"
        )

    __str__ = __repr__

    def to_bytes(self) -> bytes:
        """Compact binary form: ``0x01 | u8 len | kek_id | u32 kek_version | u16 len | wrapped_dek | nonce(12)
        | ciphertext``. Round-trips through :meth:`from_bytes`."""
        kek = self.kek_id.encode()
        if len(kek) > 255 or len(self.wrapped_dek) > 0xFFFF or len(self.nonce) != NONCE_BYTES:
            raise ValueError("SealedCard fields out of range")
        return b"".join(
            (
                _HEADER.pack(_FORMAT_V1, len(kek)),
                kek,
                _U32.pack(self.kek_version),
                _U16.pack(len(self.wrapped_dek)),
                self.wrapped_dek,
                self.nonce,
                self.ciphertext,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedCard:
        """Parse :meth:`to_bytes` output; malformed input raises ``VaultIntegrityError``."""
        try:
            fmt, kek_len = _HEADER.unpack_from(data, 0)
            if fmt != _FORMAT_V1:
                raise VaultIntegrityError("unknown sealed-card format")
            pos = _HEADER.size
            kek_id = data[pos : pos + kek_len].decode("ascii")
            pos += kek_len
            (version,) = _U32.unpack_from(data, pos)
            pos += _U32.size
            (wrapped_len,) = _U16.unpack_from(data, pos)
            pos += _U16.size
            wrapped = data[pos : pos + wrapped_len]
            pos += wrapped_len
            nonce = data[pos : pos + NONCE_BYTES]
            pos += NONCE_BYTES
            ciphertext = data[pos:]
        except (struct.error, UnicodeDecodeError):
            raise VaultIntegrityError("sealed card is malformed") from None
        if len(kek_id) != kek_len or len(wrapped) != wrapped_len or len(nonce) != NONCE_BYTES:
            raise VaultIntegrityError("sealed card is truncated")
        if len(ciphertext) < TAG_BYTES:
            raise VaultIntegrityError("sealed card is truncated")
        return cls(kek_id, version, bytes(wrapped), bytes(nonce), bytes(ciphertext))


def record_aad(token: str, merchant_id: str) -> bytes:
    """Associated data for one record: format tag + length-prefixed token id + length-prefixed merchant id.

    Length prefixes make the encoding injective (``("ab", "c")`` and ``("a", "bc")`` differ).
    """
    tok, mer = token.encode(), merchant_id.encode()
    if not tok or not mer:
        raise ValueError("token and merchant_id are required")
    return b"".join((_AAD_PREFIX, _U16.pack(len(tok)), tok, _U16.pack(len(mer)), mer))


def seal(plaintext: bytes, *, token: str, merchant_id: str, provider: KeyProvider) -> SealedCard:
    """Encrypt ``plaintext`` under a fresh DEK bound to ``(token, merchant_id)``; wrap the DEK with the
    current KEK."""
    dek = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, record_aad(token, merchant_id))
    kek_id, wrapped = provider.wrap(dek)
    _, version = parse_kek_id(kek_id)
    return SealedCard(kek_id, version, wrapped, nonce, ciphertext)


def _unwrap_checked(sealed: SealedCard, provider: KeyProvider) -> bytes:
    _, version = parse_kek_id(sealed.kek_id)
    if version != sealed.kek_version:
        raise VaultIntegrityError("kek_version does not match kek_id")
    dek = provider.unwrap(sealed.kek_id, sealed.wrapped_dek)
    if len(dek) != DEK_BYTES:
        raise VaultIntegrityError("data key has the wrong length")
    return dek


def open_sealed(sealed: SealedCard, *, token: str, merchant_id: str, provider: KeyProvider) -> bytes:
    """Decrypt a record sealed for ``(token, merchant_id)``. Fails closed with ``VaultIntegrityError``."""
    dek = _unwrap_checked(sealed, provider)
    if len(sealed.nonce) != NONCE_BYTES:
        raise VaultIntegrityError("nonce has the wrong length")
    try:
        return AESGCM(dek).decrypt(sealed.nonce, sealed.ciphertext, record_aad(token, merchant_id))
    except InvalidTag:
        raise VaultIntegrityError("card ciphertext failed authentication (tampered or wrong token)") from None


def seal_card(
    *,
    number: str,
    exp_month: int,
    exp_year: int,
    holder_name: str | None = None,
    token: str,
    merchant_id: str,
    provider: KeyProvider,
) -> SealedCard:
    """Seal a validated card (digits-only ``number``). Expiry and holder are sealed with the PAN; the CVC
    never is.

    The payload is compact JSON ``{"n": number, "m": month, "y": year, "h": holder}``.
    """
    payload = orjson.dumps({"n": number, "m": exp_month, "y": exp_year, "h": holder_name})
    return seal(payload, token=token, merchant_id=merchant_id, provider=provider)


def open_card(sealed: SealedCard, *, token: str, merchant_id: str, provider: KeyProvider) -> CardData:
    """Open a sealed card into the :class:`CardData` handed to a connector (``cvc`` is always ``None``).

    The caller (the vault's detokenize service) must write an audit record for every call (PCI DSS 10.2.1.1).
    """
    raw = open_sealed(sealed, token=token, merchant_id=merchant_id, provider=provider)
    try:
        doc = orjson.loads(raw)
        return CardData(
            number=str(doc["n"]),
            exp_month=int(doc["m"]),
            exp_year=int(doc["y"]),
            cvc=None,
            holder_name=doc.get("h"),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise VaultIntegrityError("sealed card payload is malformed") from None


def needs_rewrap(sealed: SealedCard, provider: KeyProvider) -> bool:
    """True when the record's DEK is wrapped under a KEK other than the provider's current one."""
    return sealed.kek_id != provider.current_kek_id()


def rewrap(sealed: SealedCard, provider: KeyProvider) -> SealedCard:
    """Re-wrap the record's DEK under the current KEK; ``nonce`` and ``ciphertext`` are returned unchanged.

    Cost: one unwrap + one wrap, independent of payload size, and no access to the token/merchant needed.
    Returns ``sealed`` itself when it is already on the current KEK (idempotent, safe to re-run after a
    crash). Raises ``VaultIntegrityError`` if the wrapped DEK fails authentication -- such a record must be
    investigated, never silently re-wrapped. The core team's rotation loop: ``for row in rows_with(kek_version
    < current): row.sealed = rewrap(row.sealed, provider)`` in batches, each batch in its own transaction.
    """
    if not needs_rewrap(sealed, provider):
        _unwrap_checked(sealed, provider)  # still prove the record is sound
        return sealed
    dek = _unwrap_checked(sealed, provider)
    kek_id, wrapped = provider.wrap(dek)
    _, version = parse_kek_id(kek_id)
    return replace(sealed, kek_id=kek_id, kek_version=version, wrapped_dek=wrapped)
