"""SQL for the vault tables. Callers pass the open connection (services never commit; entry points do)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.dialect import locked
from paygate.db.tables import merchants
from paygate.vault.audit import GENESIS_HASH, AuditEntry, canonical_time
from paygate.vault.tables import payment_methods as pm
from paygate.vault.tables import vault_audit, vault_head

__all__ = [
    "append_audit",
    "audit_entries",
    "get_payment_method",
    "head",
    "insert_payment_method",
    "lock_head",
    "raw_card_access",
    "rows_to_rewrap",
    "set_sealed",
    "update_payment_method",
]


async def raw_card_access(conn: AsyncConnection, merchant_id: str) -> bool:
    value = (await conn.execute(select(merchants.c.raw_card_access).where(merchants.c.id == merchant_id))).scalar()
    return bool(value)


async def insert_payment_method(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(insert(pm).values(**row))


async def get_payment_method(
    conn: AsyncConnection, merchant_id: str, livemode: bool, pm_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    """The row of ``pm_id`` if it belongs to this merchant and mode (other tenants' rows are invisible)."""
    stmt = select(pm).where(pm.c.id == pm_id, pm.c.merchant_id == merchant_id, pm.c.livemode == livemode)
    row = (await conn.execute(locked(stmt, conn) if lock else stmt)).mappings().first()
    return dict(row) if row else None


async def update_payment_method(conn: AsyncConnection, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    await conn.execute(update(pm).where(pm.c.id == row["id"]).values(**values))
    return {**row, **values}


async def rows_to_rewrap(conn: AsyncConnection, current_kek_id: str, after_id: str, limit: int) -> list[dict[str, Any]]:
    """The next ``limit`` records (by id, after ``after_id``) whose DEK is not wrapped by ``current_kek_id``."""
    stmt = (
        select(pm.c.id, pm.c.sealed, pm.c.kek_id, pm.c.kek_version)
        .where(pm.c.kek_id != current_kek_id, pm.c.id > after_id)
        .order_by(pm.c.id)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings()]


async def set_sealed(
    conn: AsyncConnection, pm_id: str, old_kek_id: str, sealed: bytes, kek_id: str, version: int
) -> bool:
    """Replace a record's sealed bytes if it is still on ``old_kek_id`` (a concurrent rewrap wins otherwise)."""
    result = await conn.execute(
        update(pm)
        .where(pm.c.id == pm_id, pm.c.kek_id == old_kek_id)
        .values(sealed=sealed, kek_id=kek_id, kek_version=version)
        .returning(pm.c.id)
    )
    return result.first() is not None


async def lock_head(conn: AsyncConnection) -> AuditEntry | None:
    """The chain's last entry, read under the head-row lock (serialises appenders on PostgreSQL; SQLite write
    transactions are already exclusive). ``None`` for an empty chain."""
    head = (await conn.execute(locked(select(vault_head).where(vault_head.c.id == 1), conn))).mappings().first()
    if head is None:
        await conn.execute(insert(vault_head).values(id=1, seq=0, hash=GENESIS_HASH))
        return None
    if head["seq"] == 0:
        return None
    row = (await conn.execute(select(vault_audit).where(vault_audit.c.seq == head["seq"]))).mappings().first()
    if row is None:  # the head row names an entry that is gone: tampering; let verify report it
        raise LookupError("vault audit head entry is missing")
    return AuditEntry.from_mapping(dict(row))


async def append_audit(conn: AsyncConnection, entry: AuditEntry) -> None:
    values = entry.to_dict()
    values["at"] = canonical_time(entry.at)
    await conn.execute(insert(vault_audit).values(**values))
    await conn.execute(update(vault_head).where(vault_head.c.id == 1).values(seq=entry.seq, hash=entry.hash))


async def head(conn: AsyncConnection) -> tuple[int, str]:
    row = (await conn.execute(select(vault_head.c.seq, vault_head.c.hash).where(vault_head.c.id == 1))).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


async def audit_entries(conn: AsyncConnection, batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Every audit row in ``seq`` order, fetched in batches."""
    last = 0
    while True:
        rows = (
            (
                await conn.execute(
                    select(vault_audit).where(vault_audit.c.seq > last).order_by(vault_audit.c.seq).limit(batch)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield dict(row)
        last = int(rows[-1]["seq"])
