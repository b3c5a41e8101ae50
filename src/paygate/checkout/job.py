"""Worker job: settle Checkout Sessions that are due (see :mod:`paygate.checkout.lifecycle`).

Each round completes open sessions whose PaymentIntent succeeded outside the page (e.g. a status sync after a
processor timeout) and expires open sessions past ``expires_at + grace`` with nothing in flight, cancelling
their intents; each session in its own transaction with its outbox event. Safe in several workers at once:
every transition is a conditional update under a row lock, so a session is settled once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["CheckoutExpiryJob"]


class CheckoutExpiryJob:
    name = "checkout_expiry"

    def __init__(self, *, batch: int = 100) -> None:
        self.batch = batch

    async def run_once(self, gw: Gateway) -> int:
        return await gw.checkout.lifecycle.sweep(limit=self.batch)
