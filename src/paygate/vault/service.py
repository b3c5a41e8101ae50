"""The vault service: tokenize, look up, detokenize, rotate KEKs, verify the audit chain.

Contracts:

* **Only this package handles a PAN.** :meth:`VaultService.prepare` validates and seals a card (PAN encrypted
  under a fresh DEK bound to ``(pm id, merchant)``; see :mod:`paygate.vault.crypto`); :meth:`store` writes the
  row in the caller's transaction and holds the CVC in memory (:class:`~paygate.vault.cvc.CvcHold`), never in
  the database. Rows carry brand, last4, expiry, keyed fingerprint and country in clear for display.
* **Raw card access (Stripe's rule).** Publishable keys may tokenize (the checkout page does); secret keys only
  when the merchant has ``raw_card_access``.
* **Detokenize** (:meth:`detokenize`) is the one way out: it opens the record and returns a
  :class:`~paygate.connectors.base.CardData` (with the held CVC, once) for one authorization. Every call --
  granted, denied (no such token) or error (integrity failure) -- appends a hash-chained ``vault_audit`` entry
  in its own committed transaction *before* anything is returned; if the audit write fails, no card is
  returned. Integrity failures raise ``VaultIntegrityError`` (fail closed).
* **Rotation** (:meth:`rotate_kek`) adds a KEK version and re-wraps every older record in batches; records keep
  decrypting throughout because old KEK versions stay available.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import CardData
from paygate.db.engine import Database
from paygate.db.pagination import list_page
from paygate.idempotency.service import Guard, Reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import CardDeclined, InvalidRequest, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.params import merge_metadata
from paygate.kit.secret import Secret
from paygate.merchants.context import AuthContext
from paygate.settings import Settings
from paygate.vault import repository as repo
from paygate.vault.audit import AuditOutcome, VerifyResult, next_entry, verify_chain
from paygate.vault.cards import card_country, validate_card
from paygate.vault.crypto import SealedCard, open_card, rewrap, seal_card
from paygate.vault.cvc import CvcHold
from paygate.vault.errors import CardValidationError, VaultError, VaultIntegrityError
from paygate.vault.fingerprint import card_fingerprint
from paygate.vault.keyring import build_provider, fingerprint_secret
from paygate.vault.keys.base import KeyProvider
from paygate.vault.schemas import (
    PaymentMethodData,
    PaymentMethodListParams,
    UpdateParams,
    billing_details_object,
    payment_method_object,
)
from paygate.vault.tables import payment_methods

__all__ = ["PreparedCard", "RotationReport", "VaultService", "card_error"]

log = structlog.get_logger("paygate.vault")

RAW_CARD_DATA_MESSAGE = (
    "Sending credit card numbers directly to the API is generally unsafe. Use the publishable key from your "
    "checkout page, or ask for raw card data access to be enabled for your account."
)


def card_error(exc: CardValidationError, *, param_prefix: str = "") -> CardDeclined:
    """Stripe's 402 ``card_error`` for a rejected card; ``param_prefix`` nests ``card[…]`` (e.g. inside
    ``payment_method_data``). Never contains the submitted values."""
    param = exc.param
    if param_prefix:
        head, _, rest = param.partition("[")
        param = f"{param_prefix}[{head}]" + (f"[{rest}" if rest else "")
    return CardDeclined(exc.message, code=exc.code, param=param)


@dataclass(frozen=True, slots=True)
class PreparedCard:
    """A validated, sealed card not yet stored. ``repr`` hides the row's sealed bytes and the CVC."""

    row: dict[str, Any] = field(repr=False)
    cvc: str | None = field(repr=False)

    @property
    def id(self) -> str:
        return str(self.row["id"])


@dataclass(frozen=True, slots=True)
class RotationReport:
    kek_id: str
    rewrapped: int
    skipped: int


class VaultService:
    """See the module docstring. ``provider`` / ``secret`` default to the configured ones, built on first use
    (so a process that never touches a card never creates a key file)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        provider: KeyProvider | None = None,
        secret: Secret | None = None,
        cvc_hold: CvcHold | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._provider = provider
        self._secret = secret
        self._init_lock = threading.Lock()
        self.cvcs = cvc_hold or CvcHold(settings.vault_cvc_ttl_seconds)

    @property
    def provider(self) -> KeyProvider:
        if self._provider is None:
            with self._init_lock:
                if self._provider is None:
                    self._provider = build_provider(self.settings)
        return self._provider

    @property
    def secret(self) -> Secret:
        if self._secret is None:
            with self._init_lock:
                if self._secret is None:
                    self._secret = fingerprint_secret(self.settings)
        return self._secret

    def close(self) -> None:
        """Release the key provider's resources (the PKCS#11 session); a no-op for the key file."""
        close = getattr(self._provider, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------------ tokenize
    async def check_raw_access(self, ctx: AuthContext, *, param: str = "card[number]") -> None:
        """Publishable keys may send card numbers; secret keys only with ``raw_card_access`` enabled."""
        if ctx.key_kind == "publishable":
            return
        async with self.db.read() as conn:
            allowed = await repo.raw_card_access(conn, ctx.merchant_id)
        if not allowed:
            raise InvalidRequest(RAW_CARD_DATA_MESSAGE, param=param, code="raw_card_data_access_disabled")

    def prepare(self, ctx: AuthContext, data: PaymentMethodData, *, param_prefix: str = "") -> PreparedCard:
        """Validate and seal ``data`` (402 ``card_error`` on a bad card). No I/O except the key provider."""
        if data.card is None:
            param = f"{param_prefix}[card]" if param_prefix else "card"
            raise InvalidRequest(f"Missing required param: {param}.", param=param, code="parameter_missing")
        try:
            card = validate_card(data.card.number, data.card.exp_month, data.card.exp_year, data.card.cvc)
        except CardValidationError as exc:
            raise card_error(exc, param_prefix=param_prefix) from None
        pm_id = new_id("pm")
        holder = data.billing_details.name if data.billing_details else None
        sealed = seal_card(
            number=card.number,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            holder_name=holder,
            token=pm_id,
            merchant_id=ctx.merchant_id,
            provider=self.provider,
        )
        now = clock.now()
        row = {
            "id": pm_id,
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "type": "card",
            "customer": None,
            "brand": card.brand.value,
            "last4": card.last4,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card_fingerprint(card.number, secret=self.secret, merchant_id=ctx.merchant_id),
            "country": card_country(card.number),
            "funding": "unknown",
            "billing_details": jsonx.dumps(billing_details_object(data.billing_details)),
            "metadata": jsonx.dumps(data.metadata),
            "sealed": sealed.to_bytes(),
            "kek_id": sealed.kek_id,
            "kek_version": sealed.kek_version,
            "created": now,
            "updated": now,
        }
        return PreparedCard(row=row, cvc=card.cvc)

    async def store(
        self, conn: AsyncConnection, prepared: PreparedCard, *, consumed_by: str | None = None
    ) -> dict[str, Any]:
        """Insert the prepared card in the caller's transaction and hold its CVC in memory; returns the row.
        ``consumed_by``: the PaymentIntent confirmed with this new card, which uses up its single use
        (:mod:`paygate.vault.usage`) in the same insert.

        If the transaction later rolls back, the held CVC simply expires (it names a token that never existed).
        """
        row = {**prepared.row, "consumed_by": consumed_by}
        await repo.insert_payment_method(conn, row)
        if prepared.cvc is not None:
            self.cvcs.put(prepared.row["merchant_id"], prepared.id, prepared.cvc)
        log.info("payment_method.tokenized", payment_method=prepared.id, brand=prepared.row["brand"])
        return row

    async def create(self, ctx: AuthContext, data: PaymentMethodData, guard: Guard) -> Reply:
        """``POST /v1/payment_methods``: check access, tokenize, store, and record the idempotent reply in the
        same transaction as the row."""
        await self.check_raw_access(ctx)
        prepared = self.prepare(ctx, data)
        async with self.db.write() as conn:
            row = await self.store(conn, prepared)
            reply = Reply(200, orjson.dumps(payment_method_object(row)))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    # ------------------------------------------------------------------ reads / updates
    async def get_row(
        self, conn: AsyncConnection, ctx: AuthContext, pm_id: str, *, lock: bool = False, param: str = "id"
    ) -> dict[str, Any]:
        """The row of one of this merchant's payment methods, or 404 ``resource_missing``."""
        row = await repo.get_payment_method(conn, ctx.merchant_id, ctx.livemode, pm_id, lock=lock)
        if row is None:
            raise ResourceMissing("PaymentMethod", pm_id, param=param)
        return row

    async def exists(self, conn: AsyncConnection, ctx: AuthContext, pm_id: str) -> bool:
        return await repo.get_payment_method(conn, ctx.merchant_id, ctx.livemode, pm_id) is not None

    async def card_facts(self, ctx: AuthContext, pm_id: str) -> tuple[str, str | None] | None:
        """``(brand, country)`` of a vaulted card without decrypting it (for routing rules)."""
        row = await self.lookup(ctx, pm_id)
        return (row["brand"], row["country"]) if row else None

    async def lookup(self, ctx: AuthContext, pm_id: str) -> dict[str, Any] | None:
        """The row of one of this merchant's payment methods (``None`` if unknown), read in a transaction of its
        own: callers use it before their write transaction."""
        async with self.db.read() as conn:
            return await repo.get_payment_method(conn, ctx.merchant_id, ctx.livemode, pm_id)

    async def retrieve(self, ctx: AuthContext, pm_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return payment_method_object(await self.get_row(conn, ctx, pm_id))

    async def update(self, ctx: AuthContext, pm_id: str, p: UpdateParams, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            row = await self.get_row(conn, ctx, pm_id, lock=True)
            values: dict[str, Any] = {"updated": clock.now()}
            if p.billing_details is not None:
                values["billing_details"] = jsonx.dumps(billing_details_object(p.billing_details))
            if p.metadata is not None:
                values["metadata"] = merge_metadata(row["metadata"], p.metadata)
            row = await repo.update_payment_method(conn, row, values)
            reply = Reply(200, orjson.dumps(payment_method_object(row)))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    async def set_customer(self, conn: AsyncConnection, row: dict[str, Any], customer: str | None) -> dict[str, Any]:
        """Attach (``customer`` id) or detach (``None``: the card may not be used again) inside the caller's
        transaction."""
        now = clock.now()
        values: dict[str, Any] = {"customer": customer, "updated": now}
        if customer is None:
            values["detached_at"] = now
        return await repo.update_payment_method(conn, row, values)

    async def list(self, ctx: AuthContext, p: PaymentMethodListParams, *, url: str) -> dict[str, Any]:
        t = payment_methods
        scope = [t.c.merchant_id == ctx.merchant_id, t.c.livemode == ctx.livemode]
        if p.customer is not None:
            scope.append(t.c.customer == p.customer)
        async with self.db.read() as conn:
            return await list_page(
                conn, t, scope=scope, params=p, url=url, kind="payment_method", serialize=payment_method_object
            )

    # ------------------------------------------------------------------ detokenize
    async def detokenize(
        self,
        *,
        merchant_id: str,
        livemode: bool,
        token: str,
        purpose: str,
        actor: str,
        attempt_id: str | None = None,
    ) -> CardData:
        """Open ``token`` for one use (see the module docstring). The held CVC, if any, is consumed here.

        Raises ``VaultError`` (``VaultIntegrityError`` when the record fails authentication); an audit entry
        with outcome ``denied`` / ``error`` is committed first.
        """
        why = f"{purpose}:{attempt_id}" if attempt_id else purpose
        async with self.db.read() as conn:
            row = await repo.get_payment_method(conn, merchant_id, livemode, token)
        if row is None:
            await self._audit(actor, token, why, AuditOutcome.DENIED)
            raise VaultError("no such vaulted payment method for this merchant")
        try:
            sealed = SealedCard.from_bytes(row["sealed"])
            if sealed.kek_id != row["kek_id"] or sealed.kek_version != row["kek_version"]:
                raise VaultIntegrityError("record KEK columns disagree with the sealed record")
            card = open_card(sealed, token=token, merchant_id=merchant_id, provider=self.provider)
        except VaultError as exc:
            await self._audit(actor, token, why, AuditOutcome.ERROR)
            log.error("vault.detokenize_failed", payment_method=token, error_type=type(exc).__name__)
            raise
        await self._audit(actor, token, why, AuditOutcome.GRANTED)
        cvc = self.cvcs.take(merchant_id, token)
        return CardData(card.number, card.exp_month, card.exp_year, cvc=cvc, holder_name=card.holder_name)

    async def _audit(self, actor: str, token: str, purpose: str, outcome: AuditOutcome) -> None:
        async with self.db.write() as conn:
            head = await repo.lock_head(conn)
            entry = next_entry(
                head, at=datetime.now(UTC), actor=actor[:200], token=token[:40], purpose=purpose[:120], outcome=outcome
            )
            await repo.append_audit(conn, entry)

    async def verify_audit(self, *, expected_head: tuple[int, str] | None = None) -> VerifyResult:
        """Verify the whole chain and that it reaches the stored head (a deleted tail is detected); pass an
        externally pinned ``expected_head`` for stronger assurance."""
        async with self.db.read() as conn:
            stored = await repo.head(conn)
            entries = [row async for row in repo.audit_entries(conn)]
        result = verify_chain(entries, expected_head=expected_head)
        if not result.ok:
            return result
        if stored[0] > 0:
            pinned = verify_chain(entries, expected_head=stored)
            if not pinned.ok:
                return pinned
        elif entries:
            return VerifyResult(False, result.checked, 1, "entries exist but the stored head is empty (rewritten)")
        return result

    # ------------------------------------------------------------------ rotation
    async def rotate_kek(self, *, rotate: bool = True, batch: int = 200) -> RotationReport:
        """Make a new KEK current (unless ``rotate`` is false) and re-wrap every record under it.

        Each batch commits on its own; an update only applies if the record is still on the KEK it was read
        with, so concurrent runs and concurrent tokenization are safe. Records that fail authentication are
        counted in ``skipped`` and left untouched for investigation; re-running is idempotent.
        """
        provider = self.provider
        kek_id = provider.rotate() if rotate else provider.current_kek_id()
        rewrapped = skipped = 0
        after = ""
        while True:
            async with self.db.read() as conn:
                rows = await repo.rows_to_rewrap(conn, kek_id, after, batch)
            if not rows:
                break
            async with self.db.write() as conn:
                for row in rows:
                    try:
                        new = rewrap(SealedCard.from_bytes(row["sealed"]), provider)
                    except VaultIntegrityError:
                        skipped += 1
                        log.error("vault.rewrap_refused", payment_method=row["id"], kek_id=row["kek_id"])
                        continue
                    if await repo.set_sealed(
                        conn, row["id"], row["kek_id"], new.to_bytes(), new.kek_id, new.kek_version
                    ):
                        rewrapped += 1
            after = rows[-1]["id"]
        log.info("vault.kek_rotated", kek_id=kek_id, rewrapped=rewrapped, skipped=skipped)
        return RotationReport(kek_id, rewrapped, skipped)
