"""Reads the money tests make of a running server's database, on the server's own event loop."""

from __future__ import annotations

from typing import Any

from paygate.ledger.service import verify
from tests.conftest import Merchant


def scalar(merchant: Merchant, stmt: Any) -> Any:
    """The one value ``stmt`` selects, read through the server's database."""

    async def go() -> Any:
        async with merchant.server.gateway.db.read() as conn:
            return (await conn.execute(stmt)).scalar_one()

    return merchant.server.call(go())


def ledger_problems(merchant: Merchant) -> list[str]:
    """What ``paygate ledger verify`` would report (empty: every journal balances and every balance agrees)."""

    async def go() -> list[str]:
        async with merchant.server.gateway.db.read() as conn:
            return (await verify(conn)).problems

    return merchant.server.call(go())
