"""The processor layer against the simulator running as separate processes: failover, circuit breakers,
unknown outcomes resolved by status sync, and injected processor errors that never lose or double a payment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from paygate.connectors.base import AuthorizeRequest
from paygate.connectors.simulator.connector import SimulatorConnector
from paygate.kit.clock import clock
from paygate.ledger.service import verify
from tests.support.server import RunningServer
from tests.support.simulator import SimulatorProcess

pytestmark = pytest.mark.db

OPEN_SECONDS = 0.5


@pytest.fixture(scope="module")
def primary() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(hang_seconds=3.0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def secondary() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(hang_seconds=3.0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def gateway(database_url: str, backend: str, primary: SimulatorProcess) -> Iterator[RunningServer]:
    srv = RunningServer(
        database_url,
        backend,
        simulator_url=primary.url,
        processor_timeout=1.0,
        processor_max_attempts=2,
        breaker_open_seconds=OPEN_SECONDS,
        breaker_min_calls=3,
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def healthy_simulators(primary: SimulatorProcess, secondary: SimulatorProcess) -> None:
    for sim in (primary, secondary):
        sim.configure(error_rate=0.0, reset_rate=0.0, drop_response_rate=0.0)


class Client:
    def __init__(self, server: RunningServer) -> None:
        self.server = server
        created = server.new_merchant()
        self.key, self.publishable_key = created.secret_key, created.publishable_key
        self.http = httpx2.Client(base_url=server.base_url, auth=(self.key, ""), timeout=60)

    def post(self, path: str, data: dict[str, Any] | None = None) -> httpx2.Response:
        return self.http.post(path, data=data or {})

    def pay(self, pm: str = "pm_card_visa", **extra: str) -> httpx2.Response:
        return self.post(
            "/v1/payment_intents",
            {"amount": "2000", "currency": "usd", "payment_method": pm, "confirm": "true", **extra},
        )

    def add_processor(self, sim: SimulatorProcess, priority: int) -> str:
        r = self.post(
            "/v1/processors",
            {"connector": "simulator", "base_url": f"{sim.url}/native", "priority": str(priority),
             "credentials[api_key]": "sk_sim", "credentials[webhook_secret]": "whsec_sim"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    def health(self, account: str) -> dict[str, Any]:
        listed = self.http.get("/v1/processors").json()["data"]
        return next(p["health"] for p in listed if p["id"] == account)


def _authorizations(sim: SimulatorProcess, key: str) -> int:
    return len(sim.operations(type="authorize", idempotency_key=key))


def _run_sync(server: RunningServer, monkeypatch: pytest.MonkeyPatch, seconds_later: int) -> int:
    monkeypatch.setattr(clock, "offset", clock.offset + seconds_later)
    return server.call(server.gateway.status_sync.run_once())


def _ledger_ok(server: RunningServer) -> None:
    async def go() -> list[str]:
        async with server.gateway.db.read() as conn:
            return (await verify(conn)).problems

    assert server.call(go()) == []


def test_primary_failing_every_request_fails_over_to_secondary_and_its_breaker_opens_then_closes(
    gateway: RunningServer, primary: SimulatorProcess, secondary: SimulatorProcess
) -> None:
    client = Client(gateway)
    a = client.add_processor(primary, priority=1)
    client.add_processor(secondary, priority=2)
    primary.configure(error_rate=1.0)

    paid = [client.pay() for _ in range(8)]
    assert all(r.status_code == 200 and r.json()["status"] == "succeeded" for r in paid), [r.text for r in paid]
    for r in paid:
        assert _authorizations(secondary, r.json()["latest_charge"]) == 1
    assert client.health(a)["circuit"] == "open"
    assert not primary.operations(type="authorize")  # 500 before acceptance: nothing was ever accepted there

    primary.configure(error_rate=0.0)
    time.sleep(OPEN_SECONDS + 0.2)
    recovered = client.pay()
    assert recovered.status_code == 200
    assert _authorizations(primary, recovered.json()["latest_charge"]) == 1  # the half-open probe went through
    assert client.health(a)["circuit"] == "closed"
    _ledger_ok(gateway)


def test_a_failover_sends_the_cvc_to_the_next_processor_too(
    gateway: RunningServer, primary: SimulatorProcess, secondary: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault hands a card's CVC out once per confirmation; the attempt at the next processor must carry
    it as well, or that processor sees the card without its CVC (and may decline it)."""
    client = Client(gateway)
    client.add_processor(primary, priority=1)
    client.add_processor(secondary, priority=2)
    primary.configure(error_rate=1.0)
    sent: list[bool] = []  # per authorization request: did it carry a CVC?
    original = SimulatorConnector.authorize

    async def spy(self: SimulatorConnector, req: AuthorizeRequest, http: Any) -> Any:
        sent.append(req.card is not None and req.card.cvc is not None)
        return await original(self, req, http)

    monkeypatch.setattr(SimulatorConnector, "authorize", spy)
    pm = httpx2.post(
        f"{gateway.base_url}/v1/payment_methods",
        auth=(client.publishable_key, ""),
        data={"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2040",
              "card[cvc]": "737"},
    ).json()  # fmt: skip
    paid = client.pay(pm["id"])

    assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
    assert _authorizations(secondary, paid.json()["latest_charge"]) == 1
    assert len(sent) >= 2 and all(sent), sent  # the primary's attempt(s), then the secondary's


@pytest.mark.parametrize("card", ["pm_card_simTimeout", "pm_card_simDropResponse"])
def test_unknown_outcome_stays_processing_then_sync_resolves_it_with_exactly_one_authorization(
    gateway: RunningServer, primary: SimulatorProcess, card: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(gateway)  # no processors configured: test mode routes to PAYGATE_SIMULATOR_URL
    r = client.pay(card)
    assert r.status_code == 200, r.text
    pi = r.json()
    assert pi["status"] == "processing"
    assert pi["last_payment_error"] is None  # never marked failed without asking

    time.sleep(OPEN_SECONDS + 0.1)  # timeouts count against the breaker; let it half-open for the sync
    assert _run_sync(gateway, monkeypatch, seconds_later=5) >= 1
    after = client.http.get(f"/v1/payment_intents/{pi['id']}").json()
    assert after["status"] == "succeeded"
    assert after["amount_received"] == 2000
    assert _authorizations(primary, pi["latest_charge"]) == 1
    # A second sync round finds nothing left to do for it and changes nothing.
    _run_sync(gateway, monkeypatch, seconds_later=5)
    assert client.http.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "succeeded"
    _ledger_ok(gateway)


def test_thirty_percent_processor_errors_lose_and_duplicate_nothing(
    gateway: RunningServer, primary: SimulatorProcess, secondary: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(gateway)
    client.add_processor(primary, priority=1)
    client.add_processor(secondary, priority=2)
    for sim in (primary, secondary):
        sim.configure(error_rate=0.3, seed=7)

    async def fire() -> list[httpx2.Response]:
        sem = asyncio.Semaphore(16)
        async with httpx2.AsyncClient(base_url=gateway.base_url, auth=(client.key, ""), timeout=60) as http:

            async def one(i: int) -> httpx2.Response:
                async with sem:
                    return await http.post(
                        "/v1/payment_intents",
                        data={"amount": str(1000 + i), "currency": "usd", "payment_method": "pm_card_visa",
                              "confirm": "true"},
                        headers={"Idempotency-Key": f"load-{i}"},
                    )  # fmt: skip

            return list(await asyncio.gather(*(one(i) for i in range(200))))

    responses = asyncio.run(fire())
    assert all(r.status_code in (200, 402, 503) for r in responses), {r.status_code for r in responses}
    for sim in (primary, secondary):
        sim.configure(error_rate=0.0)
    _run_sync(gateway, monkeypatch, seconds_later=120)

    intents: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.http.get("/v1/payment_intents", params=params).json()
        intents += page["data"]
        if not page["has_more"]:
            break
        params["starting_after"] = page["data"][-1]["id"]
    assert len(intents) == 200  # one intent per idempotency key, none lost, none doubled
    accepted = {op["idempotency_key"] for sim in (primary, secondary) for op in sim.operations(type="authorize")}
    all_ops = [op for sim in (primary, secondary) for op in sim.operations(type="authorize")]
    assert len(all_ops) == len(accepted)  # no attempt was ever authorized twice
    succeeded = [pi for pi in intents if pi["status"] == "succeeded"]
    assert {pi["latest_charge"] for pi in succeeded} <= accepted
    for pi in intents:
        assert pi["status"] in ("succeeded", "requires_payment_method"), pi["status"]
        if pi["status"] == "requires_payment_method":  # failed for good: no processor holds money for it
            assert pi["latest_charge"] not in accepted
    assert len(succeeded) >= 180  # failover makes nearly every payment succeed
    _ledger_ok(gateway)


def test_routing_rules_pick_the_processor_by_currency_brand_and_country(
    gateway: RunningServer, primary: SimulatorProcess, secondary: SimulatorProcess
) -> None:
    client = Client(gateway)
    a = client.add_processor(primary, priority=1)
    b = client.add_processor(secondary, priority=2)
    for conditions in (
        {"conditions[currency][]": "eur"},
        {"conditions[card_brand][]": "amex"},
        {"conditions[country][]": "BR"},
    ):
        r = client.post("/v1/routing_rules", {"processors[]": b, **conditions})
        assert r.status_code == 200, r.text

    def routed_to(resp: httpx2.Response) -> str:
        assert resp.status_code == 200, resp.text
        key = resp.json()["latest_charge"]
        return "secondary" if _authorizations(secondary, key) else "primary" if _authorizations(primary, key) else "?"

    assert routed_to(client.pay()) == "primary"  # usd visa US: no rule matches, priority order
    assert routed_to(client.pay(currency="eur")) == "secondary"
    assert routed_to(client.pay("pm_card_amex")) == "secondary"
    pm = httpx2.post(  # tokenized the way a checkout page does, with the publishable key
        f"{gateway.base_url}/v1/payment_methods",
        auth=(client.publishable_key, ""),
        data={"type": "card", "card[number]": "4000000760000002", "card[exp_month]": "12", "card[exp_year]": "2040",
              "card[cvc]": "123"},
    ).json()  # fmt: skip
    assert pm["card"]["country"] == "BR"
    assert routed_to(client.pay(pm["id"])) == "secondary"  # card country from the BIN
    rules = client.http.get("/v1/routing_rules").json()["data"]
    assert len(rules) == 3
    assert all(rule["processors"] == [b] for rule in rules)
    assert a not in {p for rule in rules for p in rule["processors"]}


def test_processor_credentials_are_never_returned(gateway: RunningServer, primary: SimulatorProcess) -> None:
    client = Client(gateway)
    account = client.add_processor(primary, priority=1)
    body = client.http.get(f"/v1/processors/{account}").text
    assert "sk_sim" not in body
    assert "whsec_sim" not in body
    assert '"api_key_set":true' in body.replace(" ", "")
