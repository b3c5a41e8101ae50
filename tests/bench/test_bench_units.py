"""The pieces the benchmark's figures and checks rest on, without a database: the simulator's bounded memory and
authorization tally, the Server-Timing header, the load generator's HTTP client and the percentile arithmetic."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from array import array

import httpx2
import orjson
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paygate.api import RequestContextMiddleware
from paygate.bench.httpclient import Connection
from paygate.bench.results import Phase, percentile
from paygate.bench.scenarios import parse_server_timing
from paygate.bench.stack import cpu_spent, database_server_group
from paygate.connectors.testcards import resolve
from paygate.kit.timing import add_processor_time
from paygate.simulator.app import create_app
from paygate.simulator.config import SimConfig
from paygate.simulator.runtime import json_answer
from paygate.simulator.store import Store, Stored, Txn, _Answer, _Pending, new_id
from paygate.simulator.webhooks import ATTEMPTS_PER_PAYMENT


def _txn(ref: str) -> Txn:
    return Txn(
        id=new_id("txn_"),
        dialect="native",
        amount=1000,
        currency="usd",
        capture_method="automatic",
        status="requires_confirmation",
        card=resolve(number=None, token="pm_card_visa", holder_name=None),
        idempotency_key=ref,
        reference=None,
        metadata={"bench_ref": ref},
        return_url=None,
        description=None,
        created=0,
    )


def test_the_simulator_keeps_only_the_newest_payments_but_tallies_every_authorization() -> None:
    store = Store(retain=lambda: 10, tally_key=lambda: "bench_ref")

    async def go() -> None:
        for i in range(100):
            await store.authorize(_txn(f"r{i}"), f"key{i}")
        await store.authorize(_txn("r7"), "key-again")  # a second authorization for one reference

    asyncio.run(go())
    assert len(store.txns) == 10
    assert len(store.by_key) <= 20
    assert len(store.operations) <= 2 * 4 * 10
    assert store.operations[-1].seq == 101  # sequence numbers keep counting across evictions
    summary = store.tally_summary("r", expected=[f"r{i}" for i in range(100)] + ["never"])
    assert summary["authorizations"] == 101
    assert summary["references"] == 100
    assert summary["duplicates"] == {"r7": 2}
    assert summary["missing_count"] == 1 and summary["missing"] == ["never"]
    assert summary["unexpected_count"] == 0


def test_the_simulator_without_a_retention_limit_keeps_everything_and_tallies_nothing() -> None:
    store = Store()

    async def go() -> None:
        for i in range(30):
            await store.authorize(_txn(f"r{i}"), f"key{i}")

    asyncio.run(go())
    assert len(store.txns) == 30 and len(store.operations) == 30
    assert store.tally == {}


def _authorize_body(i: int) -> bytes:
    ref = f"run-{i:07d}"
    return orjson.dumps(
        {
            "amount": 1000 + i,
            "currency": "usd",
            "reference": f"att_{i:024d}",
            "metadata": {"bench_ref": ref, "order_id": ref, "paygate_idempotency_key": f"pay_{i:032d}:authorize"},
            "payment_method": "pm_card_visa",
            "description": "paygate bench",
        }
    )


async def _authorize(client: httpx2.AsyncClient, i: int, body: bytes | None = None) -> httpx2.Response:
    headers = {"authorization": "Bearer sk_sim", "idempotency-key": f"key-{i:08d}"}
    return await client.post("/native/v1/payments", content=body or _authorize_body(i), headers=headers)


def _client(app: ASGIApp) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://sim")


def test_a_finished_idempotent_answer_is_kept_as_one_compact_record_and_replayed_byte_for_byte() -> None:
    app = create_app(SimConfig(retain_payments=10))
    store: Store = app.state.runtime.store  # type: ignore[attr-defined]

    async def go() -> None:
        async with _client(app) as client:
            first = [await _authorize(client, i) for i in range(100)]
            kept = list(store._idem.values())
            assert len(kept) == 4 * 10  # OPERATIONS_PER_PAYMENT answers per retained payment, the newest
            for entry in kept:  # no future, no per-answer headers dict, a 32-byte digest
                assert type(entry) is _Answer
                assert entry.headers is None and len(entry.fingerprint) == 32
            again = await _authorize(client, 99)
            assert (again.status_code, again.content, again.headers.raw) == (
                first[99].status_code,
                first[99].content,
                first[99].headers.raw,
            )
            assert (await _authorize(client, 99, _authorize_body(98))).status_code == 409  # another body: conflict
            assert (await _authorize(client, 0)).json()["id"] != first[0].json()["id"]  # evicted: the key is free

    asyncio.run(go())


def test_the_simulators_webhook_attempt_log_keeps_only_the_newest_attempts_under_a_retention_limit() -> None:
    retain = 3
    config = SimConfig(retain_payments=retain, webhook_url="http://127.0.0.1:9/hooks", webhook_max_attempts=1)
    app = create_app(config)
    sender = app.state.runtime.webhooks  # type: ignore[attr-defined]

    async def go() -> list[str]:
        async with _client(app) as client:
            for i in range(40):  # more attempts than the log keeps
                assert (await _authorize(client, i)).status_code == 200
            for _ in range(500):  # every event's one attempt fails fast (nothing listens on port 9)
                if sender.attempts and sender._queue.empty() and not sender._tasks:
                    break
                await asyncio.sleep(0.01)
            await sender.stop()
            return [row["event_id"] for row in sender.attempts]

    kept = asyncio.run(go())
    assert 0 < len(kept) <= ATTEMPTS_PER_PAYMENT * retain  # of 40 payments' events, each attempted


def test_concurrent_duplicates_wait_for_the_first_answer_and_only_it_holds_a_future() -> None:
    store = Store()
    release = asyncio.Event()
    calls = 0

    async def compute() -> Stored:
        nonlocal calls
        calls += 1
        await release.wait()
        return json_answer(201, {"n": calls}, headers={"x-extra": "1"})

    def conflict() -> Stored:
        return json_answer(409, {"error": "conflict"})

    async def go() -> None:
        first = asyncio.create_task(store.idempotent("native", "k", b"f" * 32, compute, conflict))
        await asyncio.sleep(0)
        assert type(store._idem["native", "k"]) is _Pending
        duplicate = asyncio.create_task(store.idempotent("native", "k", b"f" * 32, compute, conflict))
        other = await store.idempotent("native", "k", b"g" * 32, compute, conflict)
        assert other.status == 409
        release.set()
        a, b = await first, await duplicate
        assert a is b and calls == 1
        kept = store._idem["native", "k"]
        assert type(kept) is _Answer and kept.headers == {"content-type": "application/json", "x-extra": "1"}
        replay = await store.idempotent("native", "k", b"f" * 32, compute, conflict)
        assert (replay.status, replay.body, replay.headers, replay.fault) == (a.status, a.body, a.headers, a.fault)
        assert calls == 1

    asyncio.run(go())


RETAINED_BYTES_PER_PAYMENT_LIMIT = 10_000  # measured 6.4 KB; 39.6 KB before answers were kept compactly


def test_memory_kept_per_retained_payment_stays_bounded() -> None:
    """What the store holds per retained payment at steady state (every table full), by tracemalloc: not the RSS
    (allocator noise), but exactly what it keeps alive, including any excess buffer behind an answer's body."""
    retain = 100
    app = create_app(SimConfig(retain_payments=retain))
    store: Store = app.state.runtime.store  # type: ignore[attr-defined]

    async def go() -> int:
        async with _client(app) as client:
            for i in range(200):  # warm up the app's caches, then start from an empty store
                await _authorize(client, -1 - i)
            store.reset()
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for i in range(6 * retain):  # every table full: 4 answers and operations per payment
                    assert (await _authorize(client, i)).status_code == 200
                gc.collect()
                return tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()

    kept = asyncio.run(go())
    assert len(store.txns) == retain and len(store._idem) == 4 * retain
    assert kept / retain < RETAINED_BYTES_PER_PAYMENT_LIMIT, f"{kept / retain:.0f} bytes per retained payment"


def _app_calling_processor(ms: list[float]) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for spent in ms:
            add_processor_time(spent)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


@pytest.mark.parametrize(("calls", "header"), [([12.5, 30.25], b"processor;dur=42.750"), ([], b"processor;dur=0.000")])
def test_every_response_reports_the_time_spent_waiting_on_processors(calls: list[float], header: bytes) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    app = RequestContextMiddleware(_app_calling_processor(calls), access_log=False)  # type: ignore[arg-type]
    asyncio.run(app({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert dict(sent[0]["headers"])[b"server-timing"] == header
    add_processor_time(5.0)  # outside a request: nowhere to add to, and no error


def test_server_timing_is_read_in_seconds_and_other_metrics_are_ignored() -> None:
    assert parse_server_timing(b"db;dur=3, processor;dur=12.5") == pytest.approx(0.0125)
    assert parse_server_timing(b"db;dur=3") is None
    assert parse_server_timing(None) is None


def test_percentiles_use_the_nearest_rank() -> None:
    values = array("d", [float(v) for v in range(1, 101)])
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile(array("d"), 0.5) is None


def test_the_load_generator_client_reuses_its_connection_and_reconnects_after_a_close() -> None:
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the client closed its connection
                return
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            body = await reader.readexactly(length)
            close = body == b"close"
            extra = b"Connection: close\r\n" if close else b""
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body))
            await writer.drain()
            if close:
                writer.close()
                return

    async def go() -> list[bytes]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = Connection("127.0.0.1", port, timeout=5)
        bodies = []
        for body in (b"one", b"two", b"close", b"three"):
            resp = await conn.request(b"POST", b"/", b"", body)
            assert resp.status == 200
            bodies.append(resp.body)
        conn.close()
        server.close()
        await server.wait_closed()
        return bodies

    assert asyncio.run(go()) == [b"one", b"two", b"close", b"three"]
    assert connections == 2  # kept alive until the server said close, then one new connection


def test_cpu_spent_counts_only_processes_seen_at_both_readings() -> None:
    # pid 3 exited inside the window (its CPU is unknown, not negative); pid 4 started in it (no start reading)
    start = {1: 10.0, 2: 5.0, 3: 7.0}
    end = {1: 10.5, 2: 5.25, 4: 1.0}
    assert cpu_spent(start, end) == pytest.approx(0.75)


def test_a_sqlite_or_remote_database_has_no_server_processes_to_measure() -> None:
    assert database_server_group("sqlite:////tmp/x.db") is None
    assert database_server_group(None) is None
    # nothing answers there: the bench measures without the database's share rather than failing
    assert database_server_group("postgresql://postgres@127.0.0.1:1/none") is None


def test_the_machines_busy_share_is_over_the_time_cpu_was_read_not_the_payments_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a counted run's payments end before the bench notices; the CPU read until then is divided by that longer time
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    phase = Phase("paygate", window_seconds=0.2, cpu_window_seconds=1.0, cpu_seconds={"machine": 1.5})
    assert phase.busy_share() == 0.75
    # a reading a tick over the cores' capacity on a short window is reported as fully busy, not more
    assert Phase("paygate", cpu_window_seconds=0.05, cpu_seconds={"machine": 0.11}).busy_share() == 1.0
    assert Phase("paygate", window_seconds=1.0).busy_share() is None  # not measured
