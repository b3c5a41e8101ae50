"""The only place a CVC lives after validation: a per-process, in-memory map with a short TTL.

PCI DSS 3.3.1.2 forbids storing the CVC after authorization, so it is never written to the database, the
idempotency checkpoint, a queue, an event or a log. It waits here, keyed by ``(merchant, payment method)``,
until the first authorization of that payment method *takes* it (one use), or until ``ttl`` seconds pass.

Consequences, by design: a confirmation served by another process, after a restart, or after the TTL goes to
the processor without a CVC (like any saved card); a second confirmation with the same payment method carries
no CVC. ``repr`` never shows values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["CvcHold"]


class CvcHold:
    """Thread-safe ``put`` / one-shot ``take`` of CVCs with expiry. ``clock`` is injectable for tests."""

    def __init__(self, ttl: float = 600.0, *, clock: Callable[[], float] = time.monotonic, maxsize: int = 100_000):
        self._ttl = ttl
        self._clock = clock
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"CvcHold(ttl={self._ttl}, held={len(self._items)})"

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._items)

    def put(self, merchant_id: str, token: str, cvc: str) -> None:
        """Hold ``cvc`` for the next authorization of ``token``; replaces an earlier one."""
        now = self._clock()
        with self._lock:
            self._purge(now)
            if len(self._items) >= self._maxsize:  # never grow without bound; the oldest goes first
                self._items.pop(next(iter(self._items)))
            self._items[(merchant_id, token)] = (cvc, now + self._ttl)

    def take(self, merchant_id: str, token: str) -> str | None:
        """Remove and return the held CVC (``None`` when absent or expired)."""
        now = self._clock()
        with self._lock:
            item = self._items.pop((merchant_id, token), None)
        if item is None or item[1] <= now:
            return None
        return item[0]

    def discard(self, merchant_id: str, token: str) -> None:
        with self._lock:
            self._items.pop((merchant_id, token), None)

    def _purge(self, now: float) -> None:
        expired = [k for k, (_, deadline) in self._items.items() if deadline <= now]
        for k in expired:
            del self._items[k]
