"""Connector exceptions: infrastructure faults only (declines are data, see :mod:`paygate.connectors.base`).

Hierarchy::

    ConnectorError
    ├── ProcessorUnavailable   the request provably did not take effect: safe to fail over
    │   └── CircuitOpen         we did not even send it
    ├── OutcomeUnknown         the request may have taken effect: sync, never fail over
    └── ProcessorProtocolError  the processor answered something we cannot interpret (treated as unknown)
"""

from __future__ import annotations

__all__ = [
    "CircuitOpen",
    "ConnectorError",
    "OutcomeUnknown",
    "ProcessorProtocolError",
    "ProcessorUnavailable",
]


class ConnectorError(Exception):
    """Base class. Messages never contain card data or credentials."""


class ProcessorUnavailable(ConnectorError):
    """Connection refused, DNS failure, TLS failure, or a 5xx the processor documents as 'not processed'."""


class CircuitOpen(ProcessorUnavailable):
    """The circuit breaker for this processor account is open; the request was not sent."""


class OutcomeUnknown(ConnectorError):
    """The request left and no usable answer came back (read timeout, connection reset after sending)."""


class ProcessorProtocolError(OutcomeUnknown):
    """The processor answered with something unparseable; we cannot know whether it acted."""
