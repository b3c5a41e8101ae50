"""The gateway's object graph: one :class:`Gateway` per process, built from :class:`Settings`.

Endpoints reach services through ``request.app.state.gateway``; tests build a Gateway directly.
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request

from paygate.connectors.sandbox import SandboxConnector
from paygate.db.engine import Database
from paygate.kit.errors import AuthenticationFailed, PermissionDenied
from paygate.merchants import repository as merchant_repo
from paygate.merchants.context import AuthContext
from paygate.merchants.service import KeyCache, resolve_key
from paygate.payments.service import PaymentService
from paygate.refunds.service import RefundService
from paygate.routing.service import Router
from paygate.settings import Settings

__all__ = ["Gateway"]


class Gateway:
    def __init__(self, settings: Settings, *, sandbox: SandboxConnector | None = None) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url, pool_size=settings.db_pool_size, sqlite_synchronous=settings.sqlite_synchronous
        )
        self.sandbox = sandbox or SandboxConnector(action_url_template=settings.base_url() + "/sandbox/3ds/{reference}")
        self.router = Router(self.sandbox)
        self.payments = PaymentService(self.db, self.router)
        self.refunds = RefundService(self.db, self.router)
        self.keys = KeyCache()

    async def close(self) -> None:
        await self.db.dispose()

    async def authenticate(self, request: Request, *, secret_required: bool = True) -> AuthContext:
        """Resolve ``Authorization: Bearer <key>`` (or HTTP basic with the key as user name) to a context.

        401 without a valid key; 403 for a publishable key on a secret-key endpoint."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = value.strip()
        if scheme.lower() == "basic" and key:
            import base64
            import binascii

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
        key_hash = merchant_repo.hash_key(key)
        ctx = self.keys.get(key_hash)
        if ctx is None:
            async with self.db.read() as conn:
                ctx = await resolve_key(conn, key)
            self.keys.put(key_hash, ctx)
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
