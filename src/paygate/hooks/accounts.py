"""Which connector and webhook secret serve ``/hooks/{connector}/{account}``: the resolver seam.

:func:`resolve_account` is the one question the inbound webhook code asks. Today it knows the accounts that
settings configure: the in-process sandbox (``/hooks/sandbox/sandbox``) and the default simulator account
(``/hooks/simulator/simulator_default`` when ``PAYGATE_SIMULATOR_URL`` is set), both verified with
``PAYGATE_SIMULATOR_WEBHOOK_SECRET``. Merchant processor accounts (``/v1/processors``, ids ``proc_…``) resolve to
their connector and decrypted webhook secret; further sources plug in with :func:`register_resolver`; the first
resolver that answers wins. ``None`` means "no such account" (the endpoint answers 404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paygate.connectors.base import Connector
from paygate.connectors.registry import get_connector
from paygate.kit.secret import Secret
from paygate.routing.service import SANDBOX_ACCOUNT, SIMULATOR_ACCOUNT

if TYPE_CHECKING:
    from paygate.app import Gateway

__all__ = ["ResolvedAccount", "Resolver", "register_resolver", "resolve_account"]


@dataclass(frozen=True, slots=True)
class ResolvedAccount:
    connector_name: str
    account_id: str
    connector: Connector
    webhook_secret: Secret


Resolver = Callable[["Gateway", str, str], Awaitable[ResolvedAccount | None]]
_resolvers: list[Resolver] = []


def register_resolver(resolver: Resolver) -> None:
    """Add a resolver consulted before the settings-based default."""
    _resolvers.insert(0, resolver)


async def _settings_resolver(gw: Gateway, connector_name: str, account_id: str) -> ResolvedAccount | None:
    secret = gw.settings.simulator_webhook_secret
    if not secret:
        return None
    if connector_name == "sandbox" and account_id == SANDBOX_ACCOUNT:
        return ResolvedAccount("sandbox", account_id, gw.sandbox, Secret(secret))
    if connector_name == "simulator" and account_id == SIMULATOR_ACCOUNT and gw.settings.simulator_url:
        return ResolvedAccount("simulator", account_id, get_connector("simulator"), Secret(secret))
    return None


async def _processor_accounts_resolver(gw: Gateway, connector_name: str, account_id: str) -> ResolvedAccount | None:
    """Merchant processor accounts configured through ``/v1/processors`` (their sealed webhook secret)."""
    if not account_id.startswith("proc_"):
        return None
    secret = await gw.processors.webhook_secret(connector_name, account_id)
    if secret is None:
        return None
    return ResolvedAccount(connector_name, account_id, get_connector(connector_name), secret)


async def resolve_account(gw: Gateway, connector_name: str, account_id: str) -> ResolvedAccount | None:
    """The connector and secret for one processor account, or None when paygate knows no such account."""
    for resolver in [*_resolvers, _processor_accounts_resolver, _settings_resolver]:
        found = await resolver(gw, connector_name, account_id)
        if found is not None:
            return found
    return None
