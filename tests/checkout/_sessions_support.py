"""Helpers for the Checkout Session tests (helper A's files): session creation, cards, events, rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from paygate.checkout.schemas import CardInput
from paygate.checkout.tables import checkout_sessions
from paygate.db.tables import events, payment_attempts, payment_intents
from paygate.kit import jsonx
from paygate.kit.clock import clock
from tests.conftest import Merchant
from tests.support.server import RunningServer

VISA = "4242424242424242"
DECLINE = "4000000000000002"
INSUFFICIENT = "4000000000009995"
THREE_DS = "4000002760003184"
TIMEOUT = "4000000000005126"
SLOW = "4000000000000259"


def card(number: str = VISA, cvc: str = "123", **kw: Any) -> CardInput:
    return CardInput(number=number, exp_month=12, exp_year=2034, cvc=cvc, **kw)


def session_form(**overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "mode": "payment",
        "success_url": "https://shop.example/success?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "1500",
        "line_items[0][price_data][product_data][name]": "T-shirt",
        "line_items[0][quantity]": "2",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def create_session(merchant: Merchant, **overrides: Any) -> dict[str, Any]:
    return post_session(merchant, session_form(**overrides))


def post_session(merchant: Merchant, form: dict[str, Any]) -> dict[str, Any]:
    """Create a session from ``form`` through the API; it must succeed."""
    resp = merchant.post("/v1/checkout/sessions", form)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def session_row(server: RunningServer, session_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with server.gateway.db.read() as conn:
            row = (await conn.execute(select(checkout_sessions).where(checkout_sessions.c.id == session_id))).mappings()
            return dict(row.one())

    return server.call(go())


def intent_row(server: RunningServer, intent_id: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with server.gateway.db.read() as conn:
            row = (await conn.execute(select(payment_intents).where(payment_intents.c.id == intent_id))).mappings()
            return dict(row.one())

    return server.call(go())


def attempt_ids(server: RunningServer, intent_id: str) -> list[str]:
    async def go() -> list[str]:
        async with server.gateway.db.read() as conn:
            stmt = select(payment_attempts.c.id).where(payment_attempts.c.intent_id == intent_id)
            return [str(x) for x in (await conn.execute(stmt)).scalars()]

    return server.call(go())


def authorizations(server: RunningServer, intent_id: str) -> int:
    """Authorizations the (in-process sandbox) processor accepted for this intent's attempts."""
    ids = set(attempt_ids(server, intent_id))
    return sum(1 for op in server.gateway.sandbox.operations if op.type == "authorize" and op.idempotency_key in ids)


def events_for(server: RunningServer, object_id: str, type_: str | None = None) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        async with server.gateway.db.read() as conn:
            stmt = select(events).where(events.c.object_id == object_id).order_by(events.c.created, events.c.id)
            if type_ is not None:
                stmt = stmt.where(events.c.type == type_)
            return [dict(r) | {"data": jsonx.loads(r["data"])} for r in (await conn.execute(stmt)).mappings()]

    return server.call(go())


def count_rows(server: RunningServer, merchant_id: str) -> tuple[int, int, int]:
    """(checkout sessions, payment intents, events) of a merchant."""

    async def go() -> tuple[int, int, int]:
        async with server.gateway.db.read() as conn:
            out = []
            for t in (checkout_sessions, payment_intents, events):
                stmt = select(func.count()).select_from(t).where(t.c.merchant_id == merchant_id)
                out.append(int((await conn.execute(stmt)).scalar() or 0))
            return out[0], out[1], out[2]

    return server.call(go())


@contextmanager
def clock_moved(seconds: int) -> Iterator[None]:
    """Move paygate's clock forward for the duration of the block."""
    before = clock.offset
    clock.offset = before + seconds
    try:
        yield
    finally:
        clock.offset = before
