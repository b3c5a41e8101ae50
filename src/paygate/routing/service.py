"""Route payments to processors.

Today every test-mode payment goes to the in-process sandbox processor; live mode requires a configured
processor account. The processors issue adds per-merchant accounts, routing rules, failover and circuit
breakers behind the same two calls: :meth:`Router.candidates` (ordered routes for a new attempt) and
:meth:`Router.for_attempt` (the route an existing attempt was sent through, for capture / void / refund / sync).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paygate.connectors.base import Connector, ConnectorClient, ProcessorCredentials
from paygate.connectors.sandbox import SandboxConnector
from paygate.kit.errors import InvalidRequest
from paygate.merchants.context import AuthContext

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    processor: str
    account_id: str
    connector: Connector
    credentials: ProcessorCredentials
    http: ConnectorClient | None = None


class Router:
    def __init__(self, sandbox: SandboxConnector | None = None) -> None:
        self.sandbox = sandbox or SandboxConnector()
        self._sandbox_route = Route(
            processor="sandbox",
            account_id="sandbox",
            connector=self.sandbox,
            credentials=ProcessorCredentials(account_id="sandbox", base_url="inprocess://sandbox"),
        )

    def candidates(self, ctx: AuthContext, *, amount: int, currency: str) -> list[Route]:
        """Processors to try for a new authorization, in order."""
        if ctx.livemode:
            raise InvalidRequest(
                "No processor is configured for live mode payments on this account.",
                code="processor_not_configured",
            )
        return [self._sandbox_route]

    def for_attempt(self, attempt: dict[str, Any]) -> Route:
        """The route an existing attempt used (capture, void, refund and sync must go back to it)."""
        if attempt["processor"] == "sandbox":
            return self._sandbox_route
        raise InvalidRequest(f"Processor {attempt['processor']} is not available", code="processor_unavailable")
