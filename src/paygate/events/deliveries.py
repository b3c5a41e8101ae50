"""Merchant webhook deliveries (a worker job) and their retry policy.

One ``webhook_deliveries`` row exists per (event, endpoint); the relay creates it. :class:`DeliveryJob` claims
due rows with a lease (:mod:`paygate.worker.claims`), sends them concurrently outside any transaction, then
records each attempt (status code, latency, error) and the delivery's next state:

* 2xx within the timeout (``PAYGATE_WEBHOOK_TIMEOUT_SECONDS``, 15 s) → ``succeeded``; the endpoint's failure
  streak ends.
* 410 Gone → the endpoint is disabled at once (merchant told by a ``webhook_endpoint.disabled`` event) and the
  delivery ``failed``.
* Anything else (other status, timeout, connection error, SSRF block) → retried after the next delay of the
  schedule (default :data:`DEFAULT_SCHEDULE`, about 3 days in total) with ±10 % jitter; on 429/503 a longer
  ``Retry-After`` wins (capped at a day). After the last delay the delivery is ``failed``. An endpoint whose
  failure streak reaches ``PAYGATE_WEBHOOK_DISABLE_AFTER_SECONDS`` (5 days) is disabled with an event.
* A delivery whose endpoint was disabled or deleted meanwhile becomes ``canceled`` without an attempt.

Every attempt of one event carries the same ``webhook-id`` (the event id) so receivers can deduplicate; a
worker that dies mid-request leaves the row leased, and another worker sends it again after the lease expires.
Results are recorded only while the lease is still held, so a worker that lost its lease cannot overwrite the
state another worker recorded.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import httpx2
import orjson
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.db.tables import events
from paygate.events import outbound
from paygate.events.queries import event_object
from paygate.events.signing import signature_headers
from paygate.events.ssrf import Allowlist
from paygate.events.tables import webhook_attempts as wa
from paygate.events.tables import webhook_deliveries as wd
from paygate.events.tables import webhook_endpoints as we
from paygate.events.webhook_endpoints import disable_endpoint, signing_secrets
from paygate.kit.clock import clock
from paygate.worker import claims

if TYPE_CHECKING:
    from paygate.app import Gateway
    from paygate.settings import Settings

__all__ = ["DEFAULT_SCHEDULE", "DeliveryJob", "RetryPolicy", "parse_schedule"]

log = structlog.get_logger("paygate.webhooks")

# Delay before attempt n+1 after attempt n failed (attempt 1 is immediate): ≈ 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 10 h, 14 h, 20 h, 24 h — eleven attempts over about three days.
DEFAULT_SCHEDULE: tuple[int, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 50400, 72000, 86400)
MAX_RETRY_AFTER = 86400
USER_AGENT = "paygate-webhooks/1 (+https://stripe.com/docs/webhooks compatible)"


def parse_schedule(spec: str) -> tuple[int, ...]:
    """``"5,300,1800"`` → ``(5, 300, 1800)``; empty → :data:`DEFAULT_SCHEDULE`."""
    if not spec.strip():
        return DEFAULT_SCHEDULE
    return tuple(int(float(x)) for x in spec.split(",") if x.strip())


def _jitter(delay: float) -> float:
    return delay * random.uniform(0.9, 1.1)


class RetryPolicy:
    """When to try again. ``schedule[i]`` is the delay after the (i+1)-th failed attempt; ``jitter`` maps a delay
    to the jittered one (tests pass the identity)."""

    def __init__(self, schedule: Sequence[int] = DEFAULT_SCHEDULE, jitter: Callable[[float], float] = _jitter):
        self.schedule = tuple(schedule)
        self.jitter = jitter

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def next_delay(self, attempts_made: int, status: int | None, retry_after: int | None) -> int | None:
        """Seconds until the next attempt, or None when the delivery should give up."""
        if attempts_made >= self.max_attempts:
            return None
        delay = self.jitter(self.schedule[attempts_made - 1])
        if status in (429, 503) and retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return max(0, round(delay))


class DeliveryJob:
    """Worker job sending due webhook deliveries; ``run_once`` returns the number of deliveries handled."""

    name = "webhook_deliveries"

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RetryPolicy | None = None,
        owner: str | None = None,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy(parse_schedule(settings.webhook_retry_schedule))
        self.allowlist = Allowlist.parse(settings.webhook_allowlist)
        self.allow_http = settings.webhook_allow_http
        self.timeout = settings.webhook_timeout_seconds
        self.disable_after = settings.webhook_disable_after_seconds
        self.batch_size = settings.worker_batch_size
        # The lease must outlive the slowest attempt, or a second worker could send while the first still waits.
        self.lease_seconds = max(
            settings.worker_lease_seconds, math.ceil(self.timeout * (outbound.MAX_REDIRECTS + 1)) + 1
        )
        self.owner = owner or claims.worker_id()
        self._client = client

    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                verify=True, trust_env=False, limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50)
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def run_once(self, gw: Gateway) -> int:
        now = clock.now()
        async with gw.db.write() as conn:
            jobs = await claims.claim(
                conn,
                wd,
                where=[wd.c.status == "pending", wd.c.next_attempt_at <= now],
                order_by=[wd.c.next_attempt_at, wd.c.id],
                limit=self.batch_size,
                owner=self.owner,
                lease_seconds=self.lease_seconds,
                now=now,
            )
        if not jobs:
            return 0
        try:
            await asyncio.gather(*(self._deliver(gw, job) for job in jobs))
        except asyncio.CancelledError:
            async with gw.db.write() as conn:  # hand unfinished jobs back at once (only those still ours)
                await claims.release(conn, wd, [j["id"] for j in jobs], self.owner)
            raise
        return len(jobs)

    async def _load(self, gw: Gateway, job: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        async with gw.db.read() as conn:
            ev = (await conn.execute(select(events).where(events.c.id == job["event_id"]))).mappings().first()
            ep = (await conn.execute(select(we).where(we.c.id == job["endpoint_id"]))).mappings().first()
        return (dict(ev) if ev else None), (dict(ep) if ep else None)

    async def _deliver(self, gw: Gateway, job: dict[str, Any]) -> None:
        event, endpoint = await self._load(gw, job)
        if event is None or endpoint is None or endpoint["deleted"] or endpoint["status"] != "enabled":
            async with gw.db.write() as conn:
                await conn.execute(
                    update(wd)
                    .where(claims.owned(wd, job["id"], self.owner))
                    .values(status="canceled", lease_owner=None, lease_expires_at=None, updated=clock.now())
                )
            return
        body = orjson.dumps(event_object(event))
        ts = clock.now()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            **signature_headers(signing_secrets(endpoint, ts, gw.vault.provider), event["id"], ts, body),
        }
        result = await outbound.post(
            self.client(),
            endpoint["url"],
            body,
            headers,
            allowlist=self.allowlist,
            livemode=bool(endpoint["livemode"]),
            allow_http=self.allow_http,
            timeout=self.timeout,
        )
        log.info(
            "webhook_attempt",
            event_id=event["id"],
            endpoint_id=endpoint["id"],
            attempt=job["attempts"] + 1,
            status=result.status_code,
            ms=result.latency_ms,
            error=result.error,
        )
        async with gw.db.write() as conn:
            await self._record(conn, job, endpoint, result)

    async def _record(
        self, conn: AsyncConnection, job: dict[str, Any], endpoint: dict[str, Any], result: outbound.Outcome
    ) -> None:
        now = clock.now()
        attempt_no = job["attempts"] + 1
        await conn.execute(
            insert(wa).values(
                delivery_id=job["id"],
                event_id=job["event_id"],
                endpoint_id=endpoint["id"],
                attempt=attempt_no,
                url=endpoint["url"],
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=result.error,
                response_excerpt=result.excerpt,
                worker=self.owner,
                created=now,
            )
        )
        values: dict[str, Any] = {
            "attempts": attempt_no,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated": now,
        }
        if result.ok:
            values["status"] = "succeeded"
            await conn.execute(
                update(we).where(we.c.id == endpoint["id"], we.c.failing_since.is_not(None)).values(failing_since=None)
            )
        elif result.status_code == 410:
            values["status"] = "failed"
            await disable_endpoint(conn, endpoint, "gone", "The endpoint answered 410 Gone.")
        else:
            delay = self.policy.next_delay(attempt_no, result.status_code, result.retry_after)
            if delay is None:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = now + delay
            await self._note_failure(conn, endpoint, now)
        res = await conn.execute(update(wd).where(claims.owned(wd, job["id"], self.owner)).values(**values))
        if not res.rowcount:
            log.warning("webhook_lease_lost", delivery_id=job["id"], event_id=job["event_id"])

    async def _note_failure(self, conn: AsyncConnection, endpoint: dict[str, Any], now: int) -> None:
        await conn.execute(
            update(we).where(we.c.id == endpoint["id"], we.c.failing_since.is_(None)).values(failing_since=now)
        )
        since = endpoint["failing_since"] or now
        if now - since >= self.disable_after:
            days = self.disable_after / 86400
            await disable_endpoint(
                conn,
                endpoint,
                "failing",
                f"Every delivery attempt failed for {days:g} days; the endpoint was disabled.",
            )
