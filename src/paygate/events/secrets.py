"""Webhook signing secrets at rest: sealed under the vault's key-encrypting keys, like processor credentials.

Contracts:

* :func:`seal_secret` returns text for the ``webhook_endpoints.secret`` / ``previous_secret`` columns:
  ``sealed:v1:`` + base64 of a vault-sealed record (AES-256-GCM under a fresh data key wrapped by the current KEK),
  with associated data bound to the endpoint id and merchant, so a value copied onto another endpoint fails to open.
* :func:`open_secret` returns the ``whsec_…`` secret. Values written before sealing existed (plain ``whsec_…``) are
  still accepted so deliveries never stop; :func:`reseal_all` (run by ``paygate vault rotate-kek``) seals them and
  re-wraps sealed ones onto the current KEK. Anything else fails closed with ``VaultIntegrityError``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import structlog
from sqlalchemy import RowMapping, select, update

from paygate.db.engine import Database
from paygate.events.tables import webhook_endpoints as we
from paygate.vault.crypto import SealedCard, open_sealed, seal
from paygate.vault.errors import VaultIntegrityError
from paygate.vault.keys.base import KeyProvider

__all__ = ["SEALED_PREFIX", "ResealReport", "is_current", "open_secret", "reseal_all", "seal_secret"]

log = structlog.get_logger("paygate.events.secrets")

SEALED_PREFIX = "sealed:v1:"
_PLAIN_PREFIX = "whsec_"


def seal_secret(secret: str, *, endpoint_id: str, merchant_id: str, provider: KeyProvider) -> str:
    """Seal a ``whsec_…`` secret for one endpoint; the result is safe to store."""
    sealed = seal(secret.encode(), token=endpoint_id, merchant_id=merchant_id, provider=provider)
    return SEALED_PREFIX + base64.b64encode(sealed.to_bytes()).decode("ascii")


def _sealed(stored: str) -> SealedCard:
    try:
        return SealedCard.from_bytes(base64.b64decode(stored[len(SEALED_PREFIX) :], validate=True))
    except (binascii.Error, ValueError):
        raise VaultIntegrityError("sealed webhook secret is malformed") from None


def open_secret(stored: str, *, endpoint_id: str, merchant_id: str, provider: KeyProvider) -> str:
    """The plaintext secret of a stored value (sealed, or a legacy plaintext ``whsec_…``)."""
    if stored.startswith(_PLAIN_PREFIX):
        return stored
    if not stored.startswith(SEALED_PREFIX):
        raise VaultIntegrityError("webhook secret is neither sealed nor a whsec_ secret")
    raw = open_sealed(_sealed(stored), token=endpoint_id, merchant_id=merchant_id, provider=provider)
    return raw.decode()


def is_current(stored: str, provider: KeyProvider) -> bool:
    """True when ``stored`` is sealed under the provider's current KEK (nothing to re-seal)."""
    return stored.startswith(SEALED_PREFIX) and _sealed(stored).kek_id == provider.current_kek_id()


def _resealed(row: RowMapping, provider: KeyProvider) -> dict[str, str]:
    values: dict[str, str] = {}
    for column in ("secret", "previous_secret"):
        stored = row[column]
        if stored and not is_current(stored, provider):
            plain = open_secret(stored, endpoint_id=row["id"], merchant_id=row["merchant_id"], provider=provider)
            values[column] = seal_secret(
                plain, endpoint_id=row["id"], merchant_id=row["merchant_id"], provider=provider
            )
    return values


@dataclass(frozen=True)
class ResealReport:
    changed: int
    refused: int


async def reseal_all(db: Database, provider: KeyProvider, *, batch: int = 200) -> ResealReport:
    """Seal legacy plaintext secrets and re-wrap sealed ones onto the current KEK. Each update applies only if
    the row still holds the values it was read with, so a concurrent roll wins and re-running is safe. A value
    that fails to open is left untouched and counted in ``refused`` (investigate it)."""
    changed = refused = 0
    after = ""
    while True:
        async with db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(we.c.id, we.c.merchant_id, we.c.secret, we.c.previous_secret)
                        .where(we.c.id > after)
                        .order_by(we.c.id)
                        .limit(batch)
                    )
                )
                .mappings()
                .all()
            )
        if not rows:
            return ResealReport(changed, refused)
        async with db.write() as conn:
            for row in rows:
                try:
                    values = _resealed(row, provider)
                except VaultIntegrityError:
                    refused += 1
                    log.error("webhook_secret.reseal_refused", endpoint_id=row["id"])
                    continue
                if not values:
                    continue
                res = await conn.execute(
                    update(we)
                    .where(
                        we.c.id == row["id"],
                        we.c.secret == row["secret"],
                        we.c.previous_secret.is_(None)
                        if row["previous_secret"] is None
                        else we.c.previous_secret == row["previous_secret"],
                    )
                    .values(**values)
                )
                changed += res.rowcount or 0
        after = rows[-1]["id"]
