"""The floor: the least work any Python gateway on this stack must do per payment, as a reference for throughput.

A raw ASGI app (no framework) on the same server as paygate (uvicorn with uvloop and httptools, the same number of
processes) that, for each ``POST /v1/payment_intents``:

* checks the ``Authorization`` bearer key (one comparison, no database: paygate caches key lookups too);
* reads and decodes the same form body with paygate's decoder (:func:`paygate.kit.forms.decode_body`) and checks
  ``amount``, ``currency`` and ``payment_method``;
* writes ``rows`` rows (as many as paygate wrote per payment in the same run) in **one** transaction, with the same
  database driver paygate uses (``aiosqlite`` with ``BEGIN IMMEDIATE``, WAL and the same ``synchronous`` setting on
  SQLite; ``asyncpg`` with one ``executemany`` (pipelined by asyncpg) on PostgreSQL), into one table with a primary key
  and one secondary index;
* answers a PaymentIntent-shaped JSON object of the same size (orjson).

What it leaves out is everything paygate adds on purpose: SQLAlchemy, validation models, idempotency, two
transactions around the processor call, the processor call itself, routing, ledger and event semantics. The bench
prints paygate's throughput as a ratio of this floor; both run in one invocation on one machine, which is the only
way figures from shared machines compare.

Runs as its own process: ``python -m paygate.bench.floor`` reads its settings from ``PAYGATE_BENCH_FLOOR_*``
variables (see :func:`main`) so that ``--workers N`` can use uvicorn's process supervisor.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Protocol

import orjson
from starlette.types import Message, Receive, Scope, Send

from paygate.kit.errors import InvalidRequest
from paygate.kit.forms import decode_body
from paygate.kit.ids import new_id

__all__ = ["FloorApp", "create_floor_app", "main"]

TABLE = "bench_floor_rows"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id VARCHAR(40) PRIMARY KEY, payment_id VARCHAR(40) NOT NULL, "
    "kind VARCHAR(32) NOT NULL, amount BIGINT NOT NULL, currency VARCHAR(3) NOT NULL, data TEXT NOT NULL, "
    "created BIGINT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_payment ON {TABLE} (payment_id)",
)
_KINDS = ("intent", "attempt", "idempotency", "event", "journal", "posting")
Row = tuple[str, str, str, int, str, str, int]


class _Store(Protocol):
    async def write(self, rows: list[Row]) -> None: ...
    async def close(self) -> None: ...


class _SqliteStore:
    """One aiosqlite connection per process; transactions take turns on it (SQLite has one writer anyway)."""

    def __init__(self, path: str, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self.lock = asyncio.Lock()
        self.conn: Any = None

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=WAL", f"synchronous={self.synchronous}", "busy_timeout=30000"):
            await self.conn.execute(f"PRAGMA {pragma}")

    async def write(self, rows: list[Row]) -> None:
        async with self.lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                await self.conn.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()


class _PostgresStore:
    """A fixed pool of asyncpg connections (as many as paygate's pool size)."""

    def __init__(self, conninfo: str, size: int) -> None:
        self.conninfo = conninfo
        self.size = size
        self.pool: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        import asyncpg

        for _ in range(self.size):
            self.pool.put_nowait(await asyncpg.connect(self.conninfo))

    async def write(self, rows: list[Row]) -> None:
        conn = await self.pool.get()
        try:
            async with conn.transaction():
                await conn.executemany(f"INSERT INTO {TABLE} VALUES ($1, $2, $3, $4, $5, $6, $7)", rows)
        finally:
            self.pool.put_nowait(conn)

    async def close(self) -> None:
        while not self.pool.empty():
            await self.pool.get_nowait().close()


def libpq_url(database_url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…`` (what asyncpg itself accepts)."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlite_path(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    path = make_url(database_url).database
    if not path:
        raise ValueError("the floor needs a SQLite file, not an in-memory database")
    return path


def create_table(database_url: str) -> None:
    """Create (or empty) the floor's table with the synchronous driver of the same database."""
    from sqlalchemy import create_engine, text

    from paygate.db.engine import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            for ddl in _DDL:
                conn.execute(text(ddl))
            conn.execute(text(f"DELETE FROM {TABLE}"))
    finally:
        engine.dispose()


def drop_table(database_url: str) -> None:
    from sqlalchemy import create_engine, text

    from paygate.db.engine import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
    finally:
        engine.dispose()


def _intent(pid: str, amount: int, currency: str, payment_method: str, metadata: Any, created: int) -> bytes:
    return orjson.dumps(
        {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": amount,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{pid}_secret_{new_id('cs')[3:]}",
            "confirmation_method": "automatic",
            "created": created,
            "currency": currency,
            "customer": None,
            "description": None,
            "invoice": None,
            "last_payment_error": None,
            "latest_charge": new_id("ch"),
            "livemode": False,
            "metadata": metadata if isinstance(metadata, dict) else {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": payment_method,
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": "succeeded",
            "transfer_data": None,
            "transfer_group": None,
        }
    )


class FloorApp:
    """The reference ASGI app (see the module docstring)."""

    def __init__(self, store: _Store, secret_key: str, rows: int) -> None:
        self.store = store
        self.auth = f"Bearer {secret_key}".encode()
        self.rows = max(1, rows)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] in ("/healthz", "/readyz"):
            await self._answer(send, 200, b'{"status":"ok"}')
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/payment_intents":
            await self._answer(send, 404, b'{"error":{"type":"invalid_request_error","code":"resource_missing"}}')
            return
        headers = dict(scope["headers"])
        if headers.get(b"authorization") != self.auth:
            await self._answer(send, 401, b'{"error":{"type":"invalid_request_error","message":"Invalid API key"}}')
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            params = decode_body(body, headers.get(b"content-type", b"").decode("latin-1"))
            amount = int(params["amount"])
            currency = str(params["currency"]).lower()
            payment_method = str(params["payment_method"])
            if amount <= 0 or len(currency) != 3:
                raise ValueError("amount / currency")
        except (InvalidRequest, KeyError, ValueError, TypeError):
            await self._answer(send, 400, b'{"error":{"type":"invalid_request_error","code":"parameter_invalid"}}')
            return
        created = int(time.time())
        pid = new_id("pi")
        data = orjson.dumps(params).decode()
        rows = [
            (new_id("row"), pid, _KINDS[i % len(_KINDS)], amount, currency, data, created) for i in range(self.rows)
        ]
        await self.store.write(rows)
        await self._answer(send, 200, _intent(pid, amount, currency, payment_method, params.get("metadata"), created))

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.store_open()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def store_open(self) -> None:
        opener = getattr(self.store, "open", None)
        if opener is not None:
            await opener()


def create_floor_app() -> FloorApp:
    """The uvicorn factory: settings from ``PAYGATE_BENCH_FLOOR_DATABASE_URL``, ``…_KEY``, ``…_ROWS``,
    ``…_POOL_SIZE`` and ``…_SQLITE_SYNCHRONOUS``."""
    url = os.environ["PAYGATE_BENCH_FLOOR_DATABASE_URL"]
    store: _Store
    if url.startswith("sqlite"):
        store = _SqliteStore(sqlite_path(url), os.environ.get("PAYGATE_BENCH_FLOOR_SQLITE_SYNCHRONOUS", "FULL"))
    else:
        store = _PostgresStore(libpq_url(url), int(os.environ.get("PAYGATE_BENCH_FLOOR_POOL_SIZE", "10")))
    return FloorApp(store, os.environ["PAYGATE_BENCH_FLOOR_KEY"], int(os.environ["PAYGATE_BENCH_FLOOR_ROWS"]))


def main() -> None:
    """``python -m paygate.bench.floor PORT WORKERS``: serve the floor until terminated."""
    import sys

    import uvicorn

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    uvicorn.run(
        "paygate.bench.floor:create_floor_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        server_header=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
