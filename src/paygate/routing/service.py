"""Route payments to processors: pick the accounts, in failover order, and call them through breakers.

* :meth:`Router.candidates` — ordered routes for a new authorization: the merchant's routing rules and
  processor accounts (``/v1/processors``, ``/v1/routing_rules``); with none configured, test mode goes to the
  processor simulator when ``PAYGATE_SIMULATOR_URL`` is set and to the in-process sandbox otherwise. Accounts
  whose circuit is open move to the end of the list (tried only if everything else fails).
* :meth:`Router.for_attempt` — the route an existing attempt used: capture, void, refund and sync must go
  back to the processor that holds the payment, never fail over.
* :meth:`Router.invoke` — every connector call: breaker check (``CircuitOpen`` when open), latency and
  outcome recorded; declines count as healthy answers.

Account configuration is cached per merchant for a few seconds and dropped on every change made through
this process, so the hot path costs no query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select

from paygate.connectors.base import Connector, ConnectorClient, ProcessorCredentials
from paygate.connectors.errors import CircuitOpen, ConnectorError, OutcomeUnknown, ProcessorUnavailable
from paygate.connectors.registry import get_connector
from paygate.connectors.sandbox import SandboxConnector
from paygate.db.engine import Database
from paygate.kit import jsonx
from paygate.kit.errors import InvalidRequest
from paygate.kit.secret import Secret
from paygate.kit.timing import add_processor_time
from paygate.merchants.context import AuthContext
from paygate.processors.breaker import BreakerRegistry
from paygate.processors.tables import processor_accounts, routing_rules
from paygate.routing.rules import PaymentFacts, Rule, order_accounts

__all__ = ["SANDBOX_ACCOUNT", "SIMULATOR_ACCOUNT", "Route", "Router", "is_failover_safe"]

SANDBOX_ACCOUNT = "sandbox"
SIMULATOR_ACCOUNT = "simulator_default"
CACHE_SECONDS = 5.0
CACHE_MAX_MERCHANTS = 10_000  # (merchant, mode) configurations cached at most
R = TypeVar("R")

CredentialsLoader = Callable[[dict[str, Any]], ProcessorCredentials]


@dataclass(frozen=True, slots=True)
class Route:
    processor: str  # connector name
    account_id: str
    connector: Connector
    credentials: ProcessorCredentials
    http: ConnectorClient | None = None


@dataclass(frozen=True, slots=True)
class _MerchantConfig:
    expires: float
    routes: dict[str, Route]  # enabled accounts by id
    default_order: list[str]
    rules: list[Rule]


class Router:
    def __init__(
        self,
        db: Database | None = None,
        sandbox: SandboxConnector | None = None,
        *,
        http: ConnectorClient | None = None,
        simulator_url: str | None = None,
        simulator_api_key: str | None = None,
        simulator_webhook_secret: str | None = None,
        credentials_loader: CredentialsLoader | None = None,
        breakers: BreakerRegistry | None = None,
    ) -> None:
        self.db = db
        self.sandbox = sandbox or SandboxConnector()
        self.http = http
        self.breakers = breakers or BreakerRegistry()
        self.credentials_loader = credentials_loader
        self._cache: dict[tuple[str, bool], _MerchantConfig] = {}
        self._loading: dict[tuple[str, bool], asyncio.Future[_MerchantConfig]] = {}
        self._sandbox_route = Route(
            processor="sandbox",
            account_id=SANDBOX_ACCOUNT,
            connector=self.sandbox,
            credentials=ProcessorCredentials(account_id=SANDBOX_ACCOUNT, base_url="inprocess://sandbox"),
        )
        self._simulator_route: Route | None = None
        if simulator_url:
            self._simulator_route = Route(
                processor="simulator",
                account_id=SIMULATOR_ACCOUNT,
                connector=get_connector("simulator"),
                credentials=ProcessorCredentials(
                    account_id=SIMULATOR_ACCOUNT,
                    base_url=simulator_url.rstrip("/") + "/native",
                    api_key=Secret(simulator_api_key or "sim_test_key"),
                    webhook_secret=Secret(simulator_webhook_secret) if simulator_webhook_secret else None,
                ),
                http=http,
            )

    # ------------------------------------------------------------------ configuration
    def invalidate(self, merchant_id: str, livemode: bool) -> None:
        self._cache.pop((merchant_id, livemode), None)
        self._loading.pop((merchant_id, livemode), None)  # a load already running may predate the change

    async def _config(self, merchant_id: str, livemode: bool) -> _MerchantConfig:
        """The merchant's cached configuration; when it has expired, one load serves every request that needs it
        meanwhile (before, each concurrent request ran its own two queries: at 256 payments in flight the
        expiry every 5 s stalled the process for seconds)."""
        key = (merchant_id, livemode)
        cached = self._cache.get(key)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        loading = self._loading.get(key)
        if loading is None:  # a task of its own: a cancelled request does not cancel the others' load
            loading = self._loading[key] = asyncio.ensure_future(self._load(merchant_id, livemode))
            loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading)

    def _loaded(self, key: tuple[str, bool], done: asyncio.Future[_MerchantConfig]) -> None:
        failed = done.cancelled() or done.exception() is not None  # (retrieves the exception: no warning)
        if self._loading.get(key) is not done:
            return  # invalidated while loading: the result may predate the change
        del self._loading[key]
        if failed:
            return
        self._cache[key] = done.result()
        if len(self._cache) > CACHE_MAX_MERCHANTS:  # bounded memory: drop expired entries, then the oldest
            now = time.monotonic()
            for stale in [k for k, c in self._cache.items() if c.expires <= now]:
                del self._cache[stale]
            while len(self._cache) > CACHE_MAX_MERCHANTS:
                del self._cache[next(iter(self._cache))]

    async def _load(self, merchant_id: str, livemode: bool) -> _MerchantConfig:
        routes: dict[str, Route] = {}
        order: list[str] = []
        rules: list[Rule] = []
        if self.db is not None:
            pa, rr = processor_accounts, routing_rules
            async with self.db.read() as conn:
                accounts = (
                    await conn.execute(
                        select(pa)
                        .where(pa.c.merchant_id == merchant_id, pa.c.livemode == livemode, pa.c.enabled.is_(True))
                        .order_by(pa.c.priority, pa.c.created, pa.c.id)
                    )
                ).mappings()
                for row in accounts:
                    routes[row["id"]] = self._route_for_row(dict(row))
                    order.append(row["id"])
                for row in (
                    await conn.execute(
                        select(rr).where(
                            rr.c.merchant_id == merchant_id, rr.c.livemode == livemode, rr.c.enabled.is_(True)
                        )
                    )
                ).mappings():
                    rules.append(
                        Rule(
                            id=row["id"],
                            priority=row["priority"],
                            conditions=jsonx.loads(row["conditions"]),
                            processors=jsonx.loads(row["processors"]),
                            weights=jsonx.loads(row["weights"]),
                        )
                    )
        return _MerchantConfig(time.monotonic() + CACHE_SECONDS, routes, order, rules)

    def _route_for_row(self, row: dict[str, Any]) -> Route:
        if self.credentials_loader is None:
            raise RuntimeError("processor accounts need a credentials loader")
        return Route(
            processor=row["connector"],
            account_id=row["id"],
            connector=get_connector(row["connector"]),
            credentials=self.credentials_loader(row),
            http=self.http,
        )

    # ------------------------------------------------------------------ choosing
    async def candidates(self, ctx: AuthContext, facts: PaymentFacts) -> list[Route]:
        """Routes to try for a new authorization, in failover order. Never empty (raises instead)."""
        config = await self._config(ctx.merchant_id, ctx.livemode)
        if config.routes:
            ids = [a for a in order_accounts(config.rules, config.default_order, facts) if a in config.routes]
            if not ids:
                raise InvalidRequest(
                    "The routing rule matching this payment names no enabled processor.",
                    code="processor_not_configured",
                )
            routes = [config.routes[a] for a in ids]
            return sorted(routes, key=lambda r: self.breakers.get(r.account_id).rejecting())
        if ctx.livemode:
            raise InvalidRequest(
                "No processor is configured for live mode payments on this account. Add one with POST /v1/processors.",
                code="processor_not_configured",
            )
        return [self._simulator_route or self._sandbox_route]

    async def for_attempt(self, attempt: dict[str, Any]) -> Route:
        """The route an existing attempt was sent through."""
        account = attempt["processor_account"]
        if account == SANDBOX_ACCOUNT:
            return self._sandbox_route
        if account == SIMULATOR_ACCOUNT and self._simulator_route is not None:
            return self._simulator_route
        config = await self._config(attempt["merchant_id"], bool(attempt["livemode"]))
        route = config.routes.get(account)
        if route is None and self.db is not None:  # disabled since: still the one holding this payment
            async with self.db.read() as conn:
                row = (
                    (await conn.execute(select(processor_accounts).where(processor_accounts.c.id == account)))
                    .mappings()
                    .first()
                )
            if row is not None:
                route = self._route_for_row(dict(row))
        if route is None:
            raise InvalidRequest(
                f"The processor account {account} that holds this payment is not available.",
                code="processor_unavailable",
            )
        return route

    # ------------------------------------------------------------------ calling
    async def invoke(self, route: Route, call: Callable[[], Awaitable[R]]) -> R | ConnectorError:
        """Run one connector call under the account's circuit breaker. Connector exceptions are returned, not
        raised, so callers handle every outcome explicitly."""
        breaker = self.breakers.get(route.account_id)
        if not breaker.allow():
            return CircuitOpen(f"circuit open for processor account {route.account_id}")
        started = time.perf_counter()
        try:
            result = await call()
        except ConnectorError as exc:
            breaker.record(False, (time.perf_counter() - started) * 1000)
            return exc
        except Exception:
            breaker.record(False, (time.perf_counter() - started) * 1000)
            raise
        finally:
            add_processor_time((time.perf_counter() - started) * 1000)  # Server-Timing (paygate.kit.timing)
        breaker.record(True, (time.perf_counter() - started) * 1000)
        return result


def is_failover_safe(result: object) -> bool:
    """True when the attempt provably moved no money and another processor may be tried."""
    if isinstance(result, OutcomeUnknown):
        return False
    if isinstance(result, ProcessorUnavailable):
        return True
    return bool(getattr(result, "retryable_elsewhere", False))
