"""The outbox relay (a worker job): hands each committed event on, exactly once per destination.

Every event has a row in ``event_outbox`` (written with it) until it is handed on. For each batch of them
(oldest first):

1. publish to every configured :class:`~paygate.events.publishers.Publisher` (outside any transaction; brokers
   deduplicate by event id, so a republish after a crash or a race between workers is dropped there);
2. in one write transaction, delete the batch's outbox rows — those still there, skipping rows another
   worker holds (``FOR UPDATE SKIP LOCKED``) — and, for the events whose row this transaction deleted, insert
   one ``webhook_deliveries`` row per matching enabled endpoint (``ON CONFLICT DO NOTHING`` on (event,
   endpoint)).

A publisher failure leaves the batch in the outbox; it is retried on the next round. Without publishers (the
embedded default) there is nothing to do outside a transaction, so step 2 takes the oldest batch itself: one
transaction per round; several workers still take disjoint batches. ``events`` is never updated (migration
0007: the relay used to mark ``events.relayed_at``, writing every event twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from sqlalchemy import delete, select, tuple_

from paygate.db.dialect import insert_ignore
from paygate.db.tables import event_outbox as ob
from paygate.db.tables import events
from paygate.events.publishers import Publisher
from paygate.events.queries import event_object
from paygate.events.subscriptions import matches, receiving
from paygate.events.tables import webhook_deliveries as wd
from paygate.events.tables import webhook_endpoints as we
from paygate.kit import jsonx
from paygate.kit.clock import clock
from paygate.kit.ids import new_id

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["RelayJob", "new_delivery"]

log = structlog.get_logger("paygate.relay")


class RelayJob:
    """Worker job: outbox → publishers + webhook deliveries. ``run_once`` returns the number of events relayed."""

    name = "outbox_relay"

    def __init__(self, publishers: Sequence[Publisher] = (), *, batch_size: int = 100) -> None:
        self.publishers = list(publishers)
        self.batch_size = batch_size

    async def close(self) -> None:
        for publisher in self.publishers:
            await publisher.close()

    async def run_once(self, gw: Gateway) -> int:
        if not self.publishers:
            return await self._fan_out(gw, None)
        async with gw.db.read() as conn:
            oldest = select(ob.c.event_id).order_by(ob.c.created, ob.c.event_id).limit(self.batch_size)
            stmt = select(events).where(events.c.id.in_(oldest.scalar_subquery())).order_by(events.c.created)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
        if not rows:
            return 0
        for publisher in self.publishers:
            for row in rows:
                body = orjson.dumps(event_object(row))
                await publisher.publish(row["id"], row["type"], body)
        return await self._fan_out(gw, [r["id"] for r in rows])

    async def _fan_out(self, gw: Gateway, ids: list[str] | None) -> int:
        """Step 2 for the events ``ids`` (those still in the outbox), or with ``None`` for the oldest batch."""
        now = clock.now()
        async with gw.db.write() as conn:
            queued = select(ob.c.created, ob.c.event_id)
            if ids is None:
                queued = queued.order_by(ob.c.created, ob.c.event_id).limit(self.batch_size)
            else:
                queued = queued.where(ob.c.event_id.in_(ids))
            if conn.dialect.name == "postgresql":
                queued = queued.with_for_update(skip_locked=True)
            taken = delete(ob).where(tuple_(ob.c.created, ob.c.event_id).in_(queued)).returning(ob.c.event_id)
            relayed: list[str] = list((await conn.execute(taken)).scalars())
            if not relayed:
                return 0
            # The columns fan-out needs (not ``data``, the whole object: publishers read it in run_once).
            columns = (events.c.id, events.c.merchant_id, events.c.livemode, events.c.type)
            rows = [dict(r) for r in (await conn.execute(select(*columns).where(events.c.id.in_(relayed)))).mappings()]
            scopes = {(r["merchant_id"], bool(r["livemode"])) for r in rows}
            endpoints: dict[tuple[str, bool], list[dict[str, Any]]] = {}
            for merchant_id, livemode in scopes:
                found = await conn.execute(select(we.c.id, we.c.enabled_events).where(receiving(merchant_id, livemode)))
                endpoints[(merchant_id, livemode)] = [dict(e) for e in found.mappings()]
            for r in rows:
                for ep in endpoints[(r["merchant_id"], bool(r["livemode"]))]:
                    if matches(jsonx.loads(ep["enabled_events"]), r["type"]):
                        await insert_ignore(conn, wd, new_delivery(r, ep["id"], now))
        return len(relayed)


def new_delivery(event: dict[str, Any], endpoint_id: str, now: int) -> dict[str, Any]:
    """A fresh, immediately due delivery row for ``event`` to ``endpoint_id``."""
    return {
        "id": new_id("whdel"),
        "event_id": event["id"],
        "endpoint_id": endpoint_id,
        "merchant_id": event["merchant_id"],
        "livemode": bool(event["livemode"]),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created": now,
        "updated": now,
    }
