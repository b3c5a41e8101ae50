"""Creating merchants and issuing keys; resolving an API key to an :class:`AuthContext`."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from paygate.kit.clock import clock
from paygate.kit.errors import AuthenticationFailed
from paygate.kit.ids import new_id, new_secret
from paygate.merchants import repository
from paygate.merchants.context import AuthContext

__all__ = ["CreatedMerchant", "KeyCache", "create_merchant", "resolve_key"]


@dataclass(frozen=True, slots=True)
class CreatedMerchant:
    id: str
    name: str
    secret_key: str
    publishable_key: str
    live_secret_key: str
    live_publishable_key: str


async def create_merchant(conn: AsyncConnection, name: str, *, raw_card_access: bool = False) -> CreatedMerchant:
    """Insert a merchant with test and live secret/publishable keys. Keys are returned once and stored hashed."""
    now = clock.now()
    mid = new_id("acct")
    await repository.insert_merchant(
        conn, {"id": mid, "name": name, "raw_card_access": raw_card_access, "settings": "{}", "created": now}
    )
    keys: dict[tuple[str, bool], str] = {}
    for kind, prefix in (("secret", "sk"), ("publishable", "pk")):
        for livemode in (False, True):
            key = new_secret(f"{prefix}_{'live' if livemode else 'test'}")
            keys[(kind, livemode)] = key
            await repository.insert_key(
                conn,
                {
                    "id": new_id("key"),
                    "merchant_id": mid,
                    "kind": kind,
                    "livemode": livemode,
                    "key_hash": repository.hash_key(key),
                    "redacted": f"{key[:8]}…{key[-4:]}",
                    "created": now,
                },
            )
    return CreatedMerchant(
        id=mid,
        name=name,
        secret_key=keys[("secret", False)],
        publishable_key=keys[("publishable", False)],
        live_secret_key=keys[("secret", True)],
        live_publishable_key=keys[("publishable", True)],
    )


class KeyCache:
    """A small bounded TTL cache of key hash → context, so authentication costs no query on the hot path.

    Revocation takes effect within ``ttl`` seconds."""

    def __init__(self, maxsize: int = 10_000, ttl: float = 30.0) -> None:
        self._data: OrderedDict[str, tuple[float, AuthContext]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[AuthContext]] = {}
        self.maxsize = maxsize
        self.ttl = ttl

    def get(self, key_hash: str) -> AuthContext | None:
        hit = self._data.get(key_hash)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._data.pop(key_hash, None)
            return None
        return hit[1]

    def put(self, key_hash: str, ctx: AuthContext) -> None:
        self._data[key_hash] = (time.monotonic() + self.ttl, ctx)
        self._data.move_to_end(key_hash)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    async def resolve(self, key_hash: str, load: Callable[[], Awaitable[AuthContext]]) -> AuthContext:
        """The cached context, or ``load()``'s; concurrent misses of one key share a single load (when an entry
        expired under load, every request in flight used to run its own query at once). A failed load (an
        invalid key) is not cached: the next request loads again."""
        ctx = self.get(key_hash)
        if ctx is not None:
            return ctx
        loading = self._loading.get(key_hash)
        if loading is None:  # a task of its own: a cancelled request does not cancel the others' load
            loading = self._loading[key_hash] = asyncio.ensure_future(load())
            loading.add_done_callback(lambda done: self._loaded(key_hash, done))
        return await asyncio.shield(loading)

    def _loaded(self, key_hash: str, done: asyncio.Future[AuthContext]) -> None:
        if self._loading.get(key_hash) is done:
            del self._loading[key_hash]
        if not done.cancelled() and done.exception() is None:
            self.put(key_hash, done.result())


def _redact(key: str) -> str:
    return f"{key[:8]}{'*' * 8}{key[-4:]}" if len(key) > 16 else "********"


async def resolve_key(conn: AsyncConnection, key: str) -> AuthContext:
    """Map a presented API key to its merchant context or raise 401 (message shows a redacted key only)."""
    row = await repository.find_key(conn, repository.hash_key(key))
    if row is None or row["revoked_at"] is not None:
        raise AuthenticationFailed(f"Invalid API Key provided: {_redact(key)}", code="api_key_invalid")
    return AuthContext(merchant_id=row["merchant_id"], livemode=bool(row["livemode"]), key_kind=row["kind"])
