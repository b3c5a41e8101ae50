"""The router's per-merchant configuration cache: one load serves every concurrent request after expiry."""

from __future__ import annotations

import asyncio

import pytest

from paygate.merchants.context import AuthContext
from paygate.merchants.service import KeyCache
from paygate.routing import service as routing
from paygate.routing.rules import PaymentFacts
from paygate.routing.service import Router

pytestmark = pytest.mark.anyio
CTX = AuthContext(merchant_id="acct_1", livemode=False, key_kind="secret")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_concurrent_requests_share_one_configuration_load(monkeypatch: pytest.MonkeyPatch) -> None:
    router = Router()
    loads: list[str] = []
    real = router._load

    async def slow_load(merchant_id: str, livemode: bool) -> routing._MerchantConfig:
        loads.append(merchant_id)
        await asyncio.sleep(0.05)
        return await real(merchant_id, livemode)

    monkeypatch.setattr(router, "_load", slow_load)
    facts = PaymentFacts(1000, "usd")
    routes = await asyncio.gather(*(router.candidates(CTX, facts) for _ in range(50)))
    assert loads == ["acct_1"]
    assert {r[0].account_id for r in routes} == {"sandbox"}
    router._cache[("acct_1", False)] = routing._MerchantConfig(0.0, {}, [], [])  # expired
    await asyncio.gather(*(router.candidates(CTX, facts) for _ in range(50)))
    assert loads == ["acct_1", "acct_1"]


async def test_an_invalidation_during_a_load_makes_the_next_request_load_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = Router()
    loads: list[int] = []
    real = router._load

    async def slow_load(merchant_id: str, livemode: bool) -> routing._MerchantConfig:
        loads.append(1)
        await asyncio.sleep(0.05)
        return await real(merchant_id, livemode)

    monkeypatch.setattr(router, "_load", slow_load)
    first = asyncio.create_task(router._config("acct_1", False))
    await asyncio.sleep(0.01)
    router.invalidate("acct_1", False)  # e.g. a processor account was just added
    await first
    assert ("acct_1", False) not in router._cache  # the load that began before the change is not cached
    await router._config("acct_1", False)
    assert len(loads) == 2


async def test_concurrent_key_lookups_share_one_load_and_failures_are_not_cached() -> None:
    cache = KeyCache()
    calls: list[int] = []

    async def load() -> AuthContext:
        calls.append(1)
        await asyncio.sleep(0.05)
        return CTX

    results = await asyncio.gather(*(cache.resolve("h", load) for _ in range(30)))
    assert results == [CTX] * 30
    assert calls == [1]

    async def failing() -> AuthContext:
        calls.append(1)
        raise ValueError("invalid key")

    for _ in range(2):
        with pytest.raises(ValueError):
            await cache.resolve("bad", failing)
    assert len(calls) == 3
