"""Connector lookup by name.

``CONNECTORS`` maps every built-in connector name to one shared instance (connectors are stateless translators;
the sandbox keeps in-memory state by design, so it is shared too). :func:`get_connector` raises ``KeyError``
for an unknown name.
"""

from __future__ import annotations

from paygate.connectors.adyen import AdyenConnector
from paygate.connectors.base import Connector
from paygate.connectors.sandbox import SandboxConnector
from paygate.connectors.simulator import SimulatorConnector
from paygate.connectors.stripe import StripeConnector

__all__ = ["CONNECTORS", "get_connector", "register"]

CONNECTORS: dict[str, Connector] = {
    SandboxConnector.name: SandboxConnector(),
    SimulatorConnector.name: SimulatorConnector(),
    StripeConnector.name: StripeConnector(),
    AdyenConnector.name: AdyenConnector(),
}


def get_connector(name: str) -> Connector:
    try:
        return CONNECTORS[name]
    except KeyError:
        raise KeyError(f"unknown connector {name!r}; known: {', '.join(sorted(CONNECTORS))}") from None


def register(connector: Connector) -> None:
    """Add or replace a connector (tests, plugins)."""
    CONNECTORS[connector.name] = connector
