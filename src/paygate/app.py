"""The gateway's object graph: one :class:`Gateway` per process, built from :class:`Settings`.

Endpoints reach services through ``request.app.state.gateway``; tests build a Gateway directly.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace

from fastapi import Request

from paygate.checkout.service import CheckoutService
from paygate.connectors.client import ClientSettings, HttpConnectorClient
from paygate.connectors.sandbox import SandboxConnector
from paygate.customers.service import CustomerService
from paygate.db.engine import Database
from paygate.kit.errors import AuthenticationFailed, PermissionDenied
from paygate.merchants import repository as merchant_repo
from paygate.merchants.context import AuthContext
from paygate.merchants.service import KeyCache, resolve_key
from paygate.payments.service import PaymentService
from paygate.payments.sync import StatusSync
from paygate.processors.breaker import BreakerConfig, BreakerRegistry
from paygate.processors.service import ProcessorService
from paygate.refunds.service import RefundService
from paygate.routing.service import Router
from paygate.settings import Settings
from paygate.vault.keys.base import KeyProvider
from paygate.vault.service import VaultService

__all__ = ["Gateway"]


class Gateway:
    def __init__(self, settings: Settings, *, sandbox: SandboxConnector | None = None) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url, pool_size=settings.db_pool_size, sqlite_synchronous=settings.sqlite_synchronous
        )
        self.sandbox = sandbox or SandboxConnector(action_url_template=settings.base_url() + "/sandbox/3ds/{reference}")
        self.http = HttpConnectorClient(
            ClientSettings(
                connect_timeout=settings.processor_connect_timeout,
                read_timeout=settings.processor_timeout,
                max_attempts=settings.processor_max_attempts,
                aiohttp=settings.processor_aiohttp,
            )
        )
        self.router = Router(
            self.db,
            self.sandbox,
            http=self.http,
            simulator_url=settings.simulator_url,
            simulator_api_key=settings.simulator_api_key,
            simulator_webhook_secret=settings.simulator_webhook_secret,
            breakers=BreakerRegistry(
                BreakerConfig(
                    open_seconds=settings.breaker_open_seconds,
                    min_calls=settings.breaker_min_calls,
                    failure_threshold=settings.breaker_failure_threshold,
                )
            ),
        )
        self.processors = ProcessorService(self.db, self.router, self.key_provider)
        self.router.credentials_loader = self.processors.load_credentials
        self.vault = VaultService(self.db, settings)  # the only holder of card data; keys opened on first use
        self.customers = CustomerService(self.db, self.vault)
        self.payments = PaymentService(self.db, self.router, vault=self.vault, customers=self.customers)
        self.status_sync = StatusSync(self.db, self.router)
        self.refunds = RefundService(self.db, self.router)
        self.checkout = CheckoutService(self.db, self.payments, self.customers, settings)
        self.keys = KeyCache()

    def key_provider(self) -> KeyProvider:
        """The vault's key-encrypting-key provider (file or PKCS#11), opened on first use; processor
        credentials are sealed under the same KEKs as cards, so one rotation covers both."""
        return self.vault.provider

    async def close(self) -> None:
        self.vault.close()
        await self.http.aclose()
        await self.db.dispose()

    async def authenticate(self, request: Request, *, secret_required: bool = True) -> AuthContext:
        """Resolve ``Authorization: Bearer <key>`` (or HTTP basic with the key as user name) to a context.

        401 without a valid key; 403 for a publishable key on a secret-key endpoint."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = value.strip()
        if scheme.lower() == "basic" and key:
            try:
                key = base64.b64decode(key).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                key = ""
        elif scheme.lower() != "bearer":
            key = ""
        if not key:
            raise AuthenticationFailed(
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            )

        async def load() -> AuthContext:
            async with self.db.read() as conn:
                return await resolve_key(conn, key)

        ctx = await self.keys.resolve(merchant_repo.hash_key(key), load)
        if secret_required and ctx.key_kind != "secret":
            raise PermissionDenied(
                "This API call cannot be made with a publishable API key. Please use a secret API key.",
                code="secret_key_required",
            )
        return replace(
            ctx,
            request_id=getattr(request.state, "request_id", ""),
            idempotency_key=request.headers.get("idempotency-key"),
        )
