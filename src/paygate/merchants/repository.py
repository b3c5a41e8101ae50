"""Merchant and API-key rows."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.tables import api_keys, merchants

__all__ = ["find_key", "get_merchant", "hash_key", "insert_key", "insert_merchant"]


def hash_key(key: str) -> str:
    """API keys are 190+ bit random strings, so an unsalted SHA-256 is a safe, fast lookup hash."""
    return hashlib.sha256(key.encode()).hexdigest()


async def insert_merchant(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(merchants).values(**row))


async def insert_key(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys).values(**row))


async def get_merchant(conn: AsyncConnection, merchant_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(merchants).where(merchants.c.id == merchant_id))).mappings().first()
    return dict(row) if row else None


async def find_key(conn: AsyncConnection, key_hash: str) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                select(api_keys.c.merchant_id, api_keys.c.kind, api_keys.c.livemode, api_keys.c.revoked_at).where(
                    api_keys.c.key_hash == key_hash
                )
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None
