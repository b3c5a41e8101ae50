"""The outbox relay publishes each event to a real NATS JetStream exactly once per event id, also when an event
is published again after a crash (the server drops the copy by ``Nats-Msg-Id``)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import nats
import pytest
from sqlalchemy import delete, insert, select

from paygate.db.tables import event_outbox, events
from paygate.events.publishers import NatsPublisher
from paygate.events.relay import RelayJob
from tests.conftest import Merchant
from tests.support.server import RunningServer

NATS_URL = "nats://127.0.0.1:4222"


def _nats_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _nats_up(), reason="NATS JetStream not running on 127.0.0.1:4222")
def test_events_reach_jetstream_exactly_once_per_event_id(wh_server: RunningServer, wh_merchant: Merchant) -> None:
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"PAYGATE_TEST_{tag}", f"paygate_test_{tag}.events"
    relay = RelayJob([NatsPublisher(NATS_URL, stream=stream, subject_prefix=prefix)])
    gw = wh_server.gateway

    async def mark_all_relayed() -> None:
        async with gw.db.write() as conn:
            await conn.execute(delete(event_outbox))

    wh_server.call(mark_all_relayed())
    pi = wh_merchant.post(
        "/v1/payment_intents", {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}
    ).json()

    async def mine() -> list[str]:
        async with gw.db.read() as conn:
            rows = await conn.execute(select(events.c.id).where(events.c.merchant_id == wh_merchant.id))
            return [r[0] for r in rows]

    ids = wh_server.call(mine())
    assert ids and wh_server.call(relay.run_once(gw)) == len(ids)

    async def unrelay() -> None:  # a crash after publishing, before marking: the relay publishes again
        async with gw.db.write() as conn:
            found = await conn.execute(select(events.c.created, events.c.id).where(events.c.id.in_(ids)))
            await conn.execute(insert(event_outbox), [{"created": c, "event_id": i} for c, i in found])

    wh_server.call(unrelay())
    assert wh_server.call(relay.run_once(gw)) == len(ids)
    wh_server.call(relay.close())

    async def read_stream() -> list[tuple[str, str]]:
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream)
            got = []
            for seq in range(1, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                got.append((msg.headers["Nats-Msg-Id"], msg.subject))
            return got
        finally:
            await js.delete_stream(stream)
            await nc.close()

    got = asyncio.run(read_stream())
    assert sorted(i for i, _ in got) == sorted(ids)
    assert f"{prefix}.payment_intent.succeeded" in {s for _, s in got}
    assert pi["status"] == "succeeded"
