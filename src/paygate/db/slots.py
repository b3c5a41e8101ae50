"""Connection slots for PostgreSQL write transactions: handed out in arrival order, records of what a processor
already did first.

Why: SQLAlchemy's pool queue lets a newcomer take a connection that was just returned while an earlier waiter is
still waking up; that waiter then queues again at the back, so under load some requests starved for seconds.
Taking a slot first (as many slots as pool connections) means a write waits in the pool's queue only behind
reads, which take connections without a slot and hold them briefly.

Why two classes of waiter: a payment takes a connection twice, before and after the processor call. The second
transaction records an outcome the processor has already decided (money may have moved); while it waits, the
payment is exposed to a crash that leaves the outcome to the status sync, and it holds the customer longer.
Those transactions (``urgent``) are served before new work; each class in arrival order.

Contract of :class:`Slots`: at most ``size`` holders at once; :meth:`acquire` returns at once when a slot is free
and nobody waits, else waits its turn (every urgent waiter before any ordinary one, FIFO within a class). A
waiter cancelled while waiting takes no slot; one cancelled after it was handed a slot gives it back. Bound to
the event loop it is first used on (callers keep one per loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["Slots"]


class Slots:
    """See the module docstring."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one slot")
        self.free = size
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._ordinary)

    async def acquire(self, *, urgent: bool = False) -> None:
        if self.free > 0 and not self._urgent and not self._ordinary:
            self.free -= 1
            return
        queue = self._urgent if urgent else self._ordinary
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot it will not use
                self.release()
            else:  # leave the queue unless release() already dropped it
                with contextlib.suppress(ValueError):
                    queue.remove(turn)
            raise

    def release(self) -> None:
        """Give a slot back: to the first urgent waiter, else the first ordinary one, else to the free count."""
        for queue in (self._urgent, self._ordinary):
            while queue:
                turn = queue.popleft()
                if not turn.done():  # a waiter cancelled a moment ago is dropped, not handed the slot
                    turn.set_result(None)
                    return
        self.free += 1

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()
