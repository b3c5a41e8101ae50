"""Rate limits on hosted-page card submits (card-testing defence), per checkout session and per client IP.

Moving windows from the ``limits`` library. Storage is in process memory by default; with ``PAYGATE_REDIS_URL``
set it is Redis (``async+redis://``), so every API process of a deployment counts against the same windows.

Contract: :meth:`SubmitLimiter.hit` counts one submit against both limits and returns ``None`` when it may
proceed, or the number of whole seconds after which it would be allowed (the ``Retry-After`` value). If the
shared storage is unreachable the submit is allowed (and a warning logged): a Redis outage must not stop
customers from paying, and every other safeguard (CSRF, one payment per session, declines) still applies.
"""

from __future__ import annotations

import math
import time

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

__all__ = ["SubmitLimiter", "storage_uri"]

log = structlog.get_logger("paygate.checkout.ratelimit")

_NAMESPACE = "paygate-checkout-submit"


def storage_uri(redis_url: str | None) -> str:
    """The ``limits`` storage URI for a ``PAYGATE_REDIS_URL`` value (``redis://h:6379/0`` → ``async+redis://…``)."""
    if not redis_url:
        return "async+memory://"
    return redis_url if redis_url.startswith("async+") else "async+" + redis_url


class SubmitLimiter:
    def __init__(self, *, per_session: str, per_ip: str, redis_url: str | None = None) -> None:
        self.per_session: RateLimitItem = parse(per_session)
        self.per_ip: RateLimitItem = parse(per_ip)
        storage = storage_from_string(storage_uri(redis_url))
        if not isinstance(storage, Storage):  # pragma: no cover - storage_uri always names an async storage
            raise TypeError("the checkout rate limiter needs an async storage")
        self.storage: Storage = storage
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, session_id: str, client_ip: str) -> int | None:
        """Count one submit; ``None`` if allowed, else seconds until the next submit would be allowed."""
        checks = ((self.per_session, ("session", session_id)), (self.per_ip, ("ip", client_ip)))
        try:
            for item, (kind, value) in checks:
                if not await self.strategy.hit(item, _NAMESPACE, kind, value):
                    stats = await self.strategy.get_window_stats(item, _NAMESPACE, kind, value)
                    log.info("checkout_submit_rate_limited", limit=kind)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception as exc:  # the storage (Redis) is down: fail open, loudly
            log.warning("checkout_rate_limit_storage_unavailable", error_type=type(exc).__name__)
            return None
        return None

    async def reset(self) -> None:
        """Forget every window kept by this storage (tests)."""
        await self.storage.reset()
