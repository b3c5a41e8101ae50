"""Processor accounts and routing rules: CRUD, credential sealing, health from the circuit breakers.

Credentials are sealed with the vault's envelope encryption (AES-256-GCM data key wrapped by the KEK), bound
to the account id and merchant, and are only opened to build a connector route; the API never returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.connectors.base import ProcessorCredentials
from paygate.db.engine import Database
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.errors import InvalidRequest, ResourceMissing
from paygate.kit.ids import new_id
from paygate.kit.params import merge_metadata
from paygate.kit.secret import Secret
from paygate.merchants.context import AuthContext
from paygate.processors.schemas import (
    CreateProcessorParams,
    CreateRuleParams,
    Credentials,
    UpdateProcessorParams,
    UpdateRuleParams,
    processor_object,
    rule_object,
)
from paygate.processors.tables import processor_accounts as pa
from paygate.processors.tables import routing_rules as rr
from paygate.routing.service import Router
from paygate.vault.crypto import SealedCard, open_sealed, seal
from paygate.vault.keys.base import KeyProvider

__all__ = ["ProcessorService"]


class ProcessorService:
    def __init__(self, db: Database, router: Router, key_provider: Callable[[], KeyProvider]) -> None:
        self.db = db
        self.router = router
        self._provider = key_provider

    # ------------------------------------------------------------------ credentials
    def _seal(self, account_id: str, merchant_id: str, creds: Credentials) -> bytes:
        payload = jsonx.dumps(creds.model_dump()).encode()
        return seal(payload, token=account_id, merchant_id=merchant_id, provider=self._provider()).to_bytes()

    def credentials(self, row: dict[str, Any]) -> Credentials:
        if not row["sealed_credentials"]:
            return Credentials()
        raw = open_sealed(
            SealedCard.from_bytes(row["sealed_credentials"]),
            token=row["id"],
            merchant_id=row["merchant_id"],
            provider=self._provider(),
        )
        return Credentials.model_validate(jsonx.loads(raw))

    def load_credentials(self, row: dict[str, Any]) -> ProcessorCredentials:
        """Router hook: the connector-facing credentials of one account row."""
        c = self.credentials(row)
        return ProcessorCredentials(
            account_id=row["id"],
            base_url=row["base_url"],
            api_key=Secret(c.api_key) if c.api_key else None,
            webhook_secret=Secret(c.webhook_secret) if c.webhook_secret else None,
            merchant_account=c.merchant_account,
        )

    def _object(self, row: dict[str, Any]) -> dict[str, Any]:
        health = self.router.breakers.get(row["id"]).snapshot()
        return processor_object(row, credentials=self.credentials(row), health=health)

    # ------------------------------------------------------------------ processor accounts
    async def _get(self, conn: AsyncConnection, ctx: AuthContext, account_id: str) -> dict[str, Any]:
        row = (
            (
                await conn.execute(
                    select(pa).where(
                        pa.c.id == account_id, pa.c.merchant_id == ctx.merchant_id, pa.c.livemode == ctx.livemode
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ResourceMissing("processor", account_id)
        return dict(row)

    async def create(self, conn: AsyncConnection, ctx: AuthContext, p: CreateProcessorParams) -> dict[str, Any]:
        account_id = new_id("proc")
        row = {
            "id": account_id,
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "connector": p.connector,
            "base_url": p.base_url,
            "description": p.description,
            "priority": p.priority,
            "enabled": p.enabled,
            "sealed_credentials": self._seal(account_id, ctx.merchant_id, p.credentials),
            "metadata": jsonx.dumps(p.metadata),
            "created": clock.now(),
        }
        await conn.execute(insert(pa).values(**row))
        self.router.invalidate(ctx.merchant_id, ctx.livemode)
        return self._object(row)

    async def update(
        self, conn: AsyncConnection, ctx: AuthContext, account_id: str, p: UpdateProcessorParams
    ) -> dict[str, Any]:
        row = await self._get(conn, ctx, account_id)
        values: dict[str, Any] = {}
        for field in ("base_url", "priority", "enabled", "description"):
            if getattr(p, field) is not None:
                values[field] = getattr(p, field)
        if p.metadata is not None:
            values["metadata"] = merge_metadata(row["metadata"], p.metadata)
        if p.credentials is not None:
            current = self.credentials(row).model_dump()
            current.update(p.credentials.model_dump(exclude_none=True))
            values["sealed_credentials"] = self._seal(account_id, ctx.merchant_id, Credentials(**current))
        if values:
            await conn.execute(update(pa).where(pa.c.id == account_id).values(**values))
            row.update(values)
        self.router.invalidate(ctx.merchant_id, ctx.livemode)
        return self._object(row)

    async def retrieve(self, ctx: AuthContext, account_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return self._object(await self._get(conn, ctx, account_id))

    async def list_accounts(self, ctx: AuthContext) -> dict[str, Any]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(pa)
                    .where(pa.c.merchant_id == ctx.merchant_id, pa.c.livemode == ctx.livemode)
                    .order_by(pa.c.priority, pa.c.created, pa.c.id)
                )
            ).mappings()
            data = [self._object(dict(r)) for r in rows]
        return {"object": "list", "data": data, "has_more": False, "url": "/v1/processors"}

    async def webhook_secret(self, connector_name: str, account_id: str) -> Secret | None:
        """The webhook signing secret of a processor account (for ``/hooks/{connector}/{account}``), or None
        when no enabled account of that connector has that id or it has no secret configured."""
        async with self.db.read() as conn:
            row = (
                (await conn.execute(select(pa).where(pa.c.id == account_id, pa.c.connector == connector_name)))
                .mappings()
                .first()
            )
        if row is None:
            return None
        secret = self.credentials(dict(row)).webhook_secret
        return Secret(secret) if secret else None

    # ------------------------------------------------------------------ routing rules
    async def _check_accounts(self, conn: AsyncConnection, ctx: AuthContext, ids: list[str], param: str) -> None:
        found: set[str] = set(
            (
                await conn.execute(
                    select(pa.c.id).where(
                        pa.c.id.in_(ids), pa.c.merchant_id == ctx.merchant_id, pa.c.livemode == ctx.livemode
                    )
                )
            ).scalars()
        )
        for account_id in ids:
            if account_id not in found:
                raise ResourceMissing("processor", account_id, param=param)

    async def _get_rule(self, conn: AsyncConnection, ctx: AuthContext, rule_id: str) -> dict[str, Any]:
        row = (
            (
                await conn.execute(
                    select(rr).where(
                        rr.c.id == rule_id, rr.c.merchant_id == ctx.merchant_id, rr.c.livemode == ctx.livemode
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise ResourceMissing("routing_rule", rule_id)
        return dict(row)

    @staticmethod
    def _check_weights(weights: dict[str, int] | None, processors: list[str]) -> None:
        for account_id, weight in (weights or {}).items():
            if account_id not in processors:
                raise InvalidRequest(f"weights names {account_id}, which is not in processors", param="weights")
            if weight < 0:
                raise InvalidRequest("weights must be non-negative", param=f"weights[{account_id}]")

    async def create_rule(self, conn: AsyncConnection, ctx: AuthContext, p: CreateRuleParams) -> dict[str, Any]:
        await self._check_accounts(conn, ctx, p.processors, "processors")
        self._check_weights(p.weights, p.processors)
        row = {
            "id": new_id("rr"),
            "merchant_id": ctx.merchant_id,
            "livemode": ctx.livemode,
            "priority": p.priority,
            "conditions": jsonx.dumps(p.conditions.model_dump(exclude_none=True)),
            "processors": jsonx.dumps(p.processors),
            "weights": jsonx.dumps(p.weights) if p.weights else None,
            "description": p.description,
            "enabled": p.enabled,
            "created": clock.now(),
        }
        await conn.execute(insert(rr).values(**row))
        self.router.invalidate(ctx.merchant_id, ctx.livemode)
        return rule_object(row)

    async def update_rule(
        self, conn: AsyncConnection, ctx: AuthContext, rule_id: str, p: UpdateRuleParams
    ) -> dict[str, Any]:
        row = await self._get_rule(conn, ctx, rule_id)
        values: dict[str, Any] = {}
        processors = p.processors if p.processors is not None else jsonx.loads(row["processors"])
        if p.processors is not None:
            await self._check_accounts(conn, ctx, p.processors, "processors")
            values["processors"] = jsonx.dumps(p.processors)
        if p.weights is not None:
            self._check_weights(p.weights, processors)
            values["weights"] = jsonx.dumps(p.weights) if p.weights else None
        if p.conditions is not None:
            values["conditions"] = jsonx.dumps(p.conditions.model_dump(exclude_none=True))
        for field in ("priority", "enabled", "description"):
            if getattr(p, field) is not None:
                values[field] = getattr(p, field)
        if values:
            await conn.execute(update(rr).where(rr.c.id == rule_id).values(**values))
            row.update(values)
        self.router.invalidate(ctx.merchant_id, ctx.livemode)
        return rule_object(row)

    async def delete_rule(self, conn: AsyncConnection, ctx: AuthContext, rule_id: str) -> dict[str, Any]:
        await self._get_rule(conn, ctx, rule_id)
        await conn.execute(delete(rr).where(rr.c.id == rule_id))
        self.router.invalidate(ctx.merchant_id, ctx.livemode)
        return {"id": rule_id, "object": "routing_rule", "deleted": True}

    async def retrieve_rule(self, ctx: AuthContext, rule_id: str) -> dict[str, Any]:
        async with self.db.read() as conn:
            return rule_object(await self._get_rule(conn, ctx, rule_id))

    async def list_rules(self, ctx: AuthContext) -> dict[str, Any]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(rr)
                    .where(rr.c.merchant_id == ctx.merchant_id, rr.c.livemode == ctx.livemode)
                    .order_by(rr.c.priority, rr.c.id)
                )
            ).mappings()
            data = [rule_object(dict(r)) for r in rows]
        return {"object": "list", "data": data, "has_more": False, "url": "/v1/routing_rules"}
