"""The paygate PSP simulator: a separate ASGI app that behaves like a real payment processor.

It speaks three wire dialects over one in-memory store (native ``/native/v1``, Stripe ``/stripe/v1``, Adyen
``/adyen/v71``), decides outcomes from the shared test-card table (:mod:`paygate.connectors.testcards`),
injects faults, sends signed webhooks and exposes an inspection API under ``/_sim``. See docs/simulator.md.
"""

from paygate.simulator.app import create_app, serve
from paygate.simulator.config import SimConfig

__all__ = ["SimConfig", "create_app", "serve"]
