"""The default job set of ``paygate worker`` (and of the worker inside ``paygate demo``).

Each entry follows the :class:`paygate.worker.runner.Job` contract. Jobs written elsewhere join here:
status sync (:class:`paygate.payments.sync.StatusSync`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paygate.checkout.job import CheckoutExpiryJob
from paygate.events.deliveries import DeliveryJob
from paygate.events.publishers import publisher_from_settings
from paygate.events.relay import RelayJob
from paygate.hooks.job import InboundApplyJob
from paygate.idempotency.service import PruneJob
from paygate.worker.claims import worker_id
from paygate.worker.runner import Job

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["default_jobs"]


def default_jobs(gw: Gateway) -> list[Job]:
    """Relay, deliveries, inbound webhooks, the status sync of unknown processor outcomes, and pruning of
    idempotency keys past their 24 h retention."""
    s = gw.settings
    owner = worker_id()
    return [
        RelayJob(publisher_from_settings(s)),
        DeliveryJob(s, owner=owner),
        InboundApplyJob(owner=owner, batch_size=s.worker_batch_size, lease_seconds=s.worker_lease_seconds),
        gw.status_sync,
        PruneJob(gw.db),
        CheckoutExpiryJob(),
    ]
