"""The outbox relay without publishers (the embedded default): relays running at once take disjoint batches,
and every event is fanned out to each subscribed endpoint exactly once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from paygate.db.tables import event_outbox, events
from paygate.events.relay import RelayJob
from paygate.events.tables import webhook_deliveries
from tests.conftest import Merchant
from tests.support.server import RunningServer


def test_relays_running_at_once_fan_each_event_out_exactly_once(
    wh_server: RunningServer, wh_merchant: Merchant
) -> None:
    endpoint = wh_merchant.post("/v1/webhook_endpoints", {"url": "https://127.0.0.1:9/hook", "enabled_events[0]": "*"})
    assert endpoint.status_code == 200, endpoint.text
    for i in range(12):
        paid = wh_merchant.post(
            "/v1/payment_intents",
            {"amount": str(1000 + i), "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
        )
        assert paid.status_code == 200, paid.text
    gw = wh_server.gateway

    async def drain(relay: RelayJob) -> int:
        relayed = 0
        while n := await relay.run_once(gw):
            relayed += n
        return relayed

    async def both() -> list[int]:
        return list(await asyncio.gather(drain(RelayJob(batch_size=7)), drain(RelayJob(batch_size=7))))

    counts = wh_server.call(both())

    async def tally() -> tuple[int, int, int]:
        mine = events.c.merchant_id == wh_merchant.id
        per_event = (
            select(func.count())
            .select_from(webhook_deliveries)
            .where(webhook_deliveries.c.event_id == events.c.id)
            .scalar_subquery()
        )
        async with gw.db.read() as conn:
            total = (await conn.execute(select(func.count()).where(mine))).scalar_one()
            unrelayed = (
                await conn.execute(select(func.count()).where(mine, events.c.id.in_(select(event_outbox.c.event_id))))
            ).scalar_one()
            not_once = (await conn.execute(select(func.count()).where(mine, per_event != 1))).scalar_one()
        return total, unrelayed, not_once

    total, unrelayed, not_once = wh_server.call(tally())
    assert total >= 36  # created, charge.succeeded, payment_intent.succeeded … per payment
    assert unrelayed == 0 and not_once == 0
    assert sum(counts) >= total and all(counts)  # both relays took batches (the backlog of other tests too)
