"""Merchant webhook endpoints (Stripe's ``webhook_endpoint`` object) and their secrets.

Contracts:

* The secret (``whsec_…``) appears in the API answer exactly twice in its life: when the endpoint is created and
  when it is rolled. Retrieve / list / update never show it.
* Secrets are stored sealed under the vault's key-encrypting keys (:mod:`paygate.events.secrets`); only the
  delivery worker opens them, to sign.
* Rolling (``POST /v1/webhook_endpoints/{id}/roll_secret``, a paygate extension) keeps the old secret signing
  for ``expires_in`` seconds (default 24 h, 0 = stop at once) so a merchant can deploy the new one first.
* ``enabled_events`` is a list of event types, ``"*"`` (everything) or prefix wildcards like
  ``"payment_intent.*"``; :func:`paygate.events.subscriptions.matches` is the one matching rule.
* Deleting is final; deleted endpoints receive nothing more and are no longer listed (their delivery records
  are kept).
* URLs are checked for scheme here (https; http only in test mode or with ``PAYGATE_WEBHOOK_ALLOW_HTTP``); the
  address checks happen at delivery time (:mod:`paygate.events.ssrf`), after DNS resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import locked
from paygate.db.engine import Database
from paygate.db.pagination import ListParams, list_page
from paygate.events import service as events
from paygate.events.queries import API_VERSION
from paygate.events.secrets import open_secret, seal_secret
from paygate.events.signing import new_secret
from paygate.events.ssrf import check_scheme
from paygate.events.tables import webhook_endpoints as we
from paygate.idempotency.service import Guard, Reply
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.params import Metadata, MetadataUpdate, Params, StrictBool, merge_metadata
from paygate.merchants.context import AuthContext
from paygate.vault.keys.base import KeyProvider

__all__ = [
    "CreateEndpointParams",
    "EndpointListParams",
    "RollSecretParams",
    "UpdateEndpointParams",
    "WebhookEndpointService",
    "disable_endpoint",
    "endpoint_object",
    "signing_secrets",
]

DEFAULT_OVERLAP_SECONDS = 24 * 3600
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class CreateEndpointParams(Params):
    url: str = Field(max_length=2048)
    enabled_events: list[str] = Field(min_length=1)
    description: str | None = Field(default=None, max_length=5000)
    metadata: Metadata = {}
    api_version: str | None = None
    connect: StrictBool | None = None


class UpdateEndpointParams(Params):
    url: str | None = Field(default=None, max_length=2048)
    enabled_events: list[str] | None = None
    description: str | None = Field(default=None, max_length=5000)
    metadata: MetadataUpdate | None = None
    disabled: StrictBool | None = None


class RollSecretParams(Params):
    expires_in: int = Field(default=DEFAULT_OVERLAP_SECONDS, ge=0, le=MAX_OVERLAP_SECONDS)


class EndpointListParams(ListParams):
    pass


def signing_secrets(row: dict[str, Any], now: int, provider: KeyProvider) -> list[str]:
    """The secrets that sign a delivery now: the current one, plus the previous one during a roll's overlap.
    Fails closed (``VaultIntegrityError``) when a stored secret does not open for this endpoint."""
    names = ["secret"]
    if row["previous_secret"] and (row["previous_secret_expires_at"] or 0) > now:
        names.append("previous_secret")
    return [
        open_secret(str(row[n]), endpoint_id=row["id"], merchant_id=row["merchant_id"], provider=provider)
        for n in names
    ]


def endpoint_object(row: dict[str, Any], *, secret: str | None = None) -> dict[str, Any]:
    """The API object; ``secret`` (plaintext) is included only on create and roll."""
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "webhook_endpoint",
        "api_version": API_VERSION,
        "application": None,
        "created": row["created"],
        "description": row["description"],
        "enabled_events": jsonx.loads(row["enabled_events"]),
        "livemode": bool(row["livemode"]),
        "metadata": jsonx.loads(row["metadata"]),
        "status": row["status"],
        "url": row["url"],
    }
    if secret is not None:
        obj["secret"] = secret
    return obj


def _ok(obj: dict[str, Any]) -> Reply:
    return Reply(200, orjson.dumps(obj))


def _check_events(enabled: list[str]) -> list[str]:
    cleaned = [e.strip() for e in enabled if e.strip()]
    if not cleaned:
        raise InvalidRequest("enabled_events must name at least one event type or '*'.", param="enabled_events")
    for e in cleaned:
        if len(e) > 80 or (e != "*" and not all(part for part in e.split("."))):
            raise InvalidRequest(f"Invalid event type: {e!r}.", param="enabled_events")
    return cleaned


class WebhookEndpointService:
    def __init__(self, db: Database, provider: Callable[[], KeyProvider], *, allow_http: bool = False) -> None:
        self.db = db
        self.allow_http = allow_http
        self._provider = provider

    def _seal(self, secret: str, endpoint_id: str, merchant_id: str) -> str:
        return seal_secret(secret, endpoint_id=endpoint_id, merchant_id=merchant_id, provider=self._provider())

    def _check_url(self, ctx: AuthContext, url: str) -> None:
        try:
            check_scheme(url, livemode=ctx.livemode, allow_http=self.allow_http)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="url") from None

    async def _get(self, conn: AsyncConnection, ctx: AuthContext, endpoint_id: str, *, lock: bool) -> dict[str, Any]:
        stmt = select(we).where(
            we.c.id == endpoint_id, we.c.merchant_id == ctx.merchant_id, we.c.livemode == ctx.livemode, ~we.c.deleted
        )
        row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
        if row is None:
            raise ResourceMissing("webhook_endpoint", endpoint_id)
        return dict(row)

    async def create(self, ctx: AuthContext, p: CreateEndpointParams, guard: Guard) -> Reply:
        self._check_url(ctx, p.url)
        now = clock.now()
        endpoint_id, secret = new_id("we"), new_secret()
        row = {
            "id": endpoint_id,
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "url": p.url,
            "description": p.description,
            "enabled_events": jsonx.dumps(_check_events(p.enabled_events)),
            "metadata": jsonx.dumps(p.metadata),
            "status": "enabled",
            "disabled_reason": None,
            "secret": self._seal(secret, endpoint_id, ctx.merchant_id),
            "previous_secret": None,
            "previous_secret_expires_at": None,
            "failing_since": None,
            "deleted": False,
            "created": now,
            "updated": now,
        }
        async with self.db.write() as conn:
            await conn.execute(we.insert().values(**row))
            reply = _ok(endpoint_object(row, secret=secret))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    async def retrieve(self, ctx: AuthContext, endpoint_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return endpoint_object(await self._get(conn, ctx, endpoint_id, lock=False))

    async def list_endpoints(self, ctx: AuthContext, params: EndpointListParams) -> dict[str, Any]:
        scope = [we.c.merchant_id == ctx.merchant_id, we.c.livemode == ctx.livemode, ~we.c.deleted]
        async with self.db.read() as conn:
            return await list_page(
                conn,
                we,
                scope=scope,
                params=params,
                url="/v1/webhook_endpoints",
                kind="webhook_endpoint",
                serialize=endpoint_object,
            )

    async def update(self, ctx: AuthContext, endpoint_id: str, p: UpdateEndpointParams, guard: Guard) -> Reply:
        values: dict[str, Any] = {"updated": clock.now()}
        if p.url is not None:
            self._check_url(ctx, p.url)
            values["url"] = p.url
        if p.enabled_events is not None:
            values["enabled_events"] = jsonx.dumps(_check_events(p.enabled_events))
        if p.description is not None:
            values["description"] = p.description or None
        if p.disabled is not None:
            values["status"] = "disabled" if p.disabled else "enabled"
            values["disabled_reason"] = "requested" if p.disabled else None
            if not p.disabled:
                values["failing_since"] = None
        async with self.db.write() as conn:
            row = await self._get(conn, ctx, endpoint_id, lock=True)
            if p.metadata is not None:
                values["metadata"] = merge_metadata(row["metadata"], p.metadata)
            await conn.execute(update(we).where(we.c.id == endpoint_id).values(**values))
            row.update(values)
            reply = _ok(endpoint_object(row))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    async def roll_secret(self, ctx: AuthContext, endpoint_id: str, p: RollSecretParams, guard: Guard) -> Reply:
        now = clock.now()
        secret = new_secret()
        async with self.db.write() as conn:
            row = await self._get(conn, ctx, endpoint_id, lock=True)
            values = {
                "secret": self._seal(secret, endpoint_id, ctx.merchant_id),
                "previous_secret": row["secret"] if p.expires_in > 0 else None,
                "previous_secret_expires_at": now + p.expires_in if p.expires_in > 0 else None,
                "updated": now,
            }
            await conn.execute(update(we).where(we.c.id == endpoint_id).values(**values))
            row.update(values)
            reply = _ok(endpoint_object(row, secret=secret))
            await guard.finish(conn, reply.status, reply.body)
        return reply

    async def delete(self, ctx: AuthContext, endpoint_id: str, guard: Guard) -> Reply:
        async with self.db.write() as conn:
            await self._get(conn, ctx, endpoint_id, lock=True)
            await conn.execute(
                update(we)
                .where(we.c.id == endpoint_id)
                .values(deleted=True, status="disabled", disabled_reason="deleted", updated=clock.now())
            )
            reply = _ok({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})
            await guard.finish(conn, reply.status, reply.body)
        return reply


async def disable_endpoint(conn: AsyncConnection, row: dict[str, Any], reason: str, detail: str) -> bool:
    """Disable an endpoint from the worker (410 Gone, or failing too long) and tell the merchant with a
    ``webhook_endpoint.disabled`` event (paygate extension) in the same transaction. Returns False when it was
    already disabled (nothing emitted)."""
    res = await conn.execute(
        update(we)
        .where(we.c.id == row["id"], we.c.status == "enabled")
        .values(status="disabled", disabled_reason=reason, updated=clock.now())
    )
    if not res.rowcount:
        return False
    ctx = AuthContext(merchant_id=row["merchant_id"], livemode=bool(row["livemode"]), key_kind="secret")
    obj = endpoint_object({**row, "status": "disabled"})
    obj["disabled_reason"] = reason
    obj["disabled_detail"] = detail
    await events.emit(conn, ctx, "webhook_endpoint.disabled", obj)
    return True
