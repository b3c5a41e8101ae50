"""The ``paygate`` command line (typer).

Contract other tools rely on (see README): ``serve``, ``merchants create --name N [--json]``, ``ledger verify``,
``db upgrade``, ``demo``.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paygate.settings import Settings, get_settings
from paygate.vault.cli import audit_app, vault_app

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

    from paygate.app import Gateway

app = typer.Typer(no_args_is_help=True, add_completion=False, help="paygate: an open-source payment gateway.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema management.")
merchants_app = typer.Typer(no_args_is_help=True, help="Merchants and API keys.")
ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")
app.add_typer(db_app, name="db")
app.add_typer(merchants_app, name="merchants")
app.add_typer(ledger_app, name="ledger")
app.add_typer(vault_app, name="vault")
app.add_typer(audit_app, name="audit")


def _ensure_sqlite_dir(url: str) -> None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


def _upgrade(settings: Settings) -> None:
    from paygate.db.migrate import upgrade

    _ensure_sqlite_dir(settings.database_url)
    upgrade(settings.database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to PAYGATE_DATABASE_URL."""
    settings = get_settings()
    _upgrade(settings)
    from paygate.db.migrate import current_revision

    typer.echo(f"database at revision {current_revision(settings.database_url)}")


async def _create_merchant(settings: Settings, name: str) -> dict[str, str]:
    from paygate.db.engine import Database
    from paygate.merchants.service import create_merchant

    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.write() as conn:
            m = await create_merchant(conn, name)
    finally:
        await db.dispose()
    return {
        "id": m.id,
        "name": m.name,
        "secret_key": m.secret_key,
        "publishable_key": m.publishable_key,
        "live_secret_key": m.live_secret_key,
        "live_publishable_key": m.live_publishable_key,
    }


@merchants_app.command("create")
def merchants_create(
    name: Annotated[str, typer.Option("--name", help="Merchant display name")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Create a merchant with test- and live-mode keys. Keys are shown once: they are stored hashed."""
    settings = get_settings()
    _upgrade(settings)
    m = asyncio.run(_create_merchant(settings, name))
    if as_json:
        typer.echo(json.dumps({"id": m["id"], "secret_key": m["secret_key"], "publishable_key": m["publishable_key"]}))
    else:
        typer.echo(
            f"merchant        {m['id']} ({m['name']})\nsecret key      {m['secret_key']}\n"
            f"publishable key {m['publishable_key']}\nlive keys       {m['live_secret_key']} / "
            f"{m['live_publishable_key']}"
        )


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Prove every journal balances and every payment's ledger balance matches its state. Exit 1 if not."""
    from paygate.db.engine import Database
    from paygate.ledger.service import verify

    settings = get_settings()

    async def go() -> int:
        db = Database(settings.database_url, pool_size=1)
        try:
            async with db.read() as conn:
                report = await verify(conn)
        finally:
            await db.dispose()
        typer.echo(
            f"journals: {report.journals}  postings: {report.postings}  payments checked: {report.intents_checked}"
        )
        if report.ok:
            typer.echo("ledger OK: every journal sums to zero and every balance agrees")
            return 0
        for problem in report.problems:
            typer.echo(f"PROBLEM: {problem}", err=True)
        return 1

    raise typer.Exit(asyncio.run(go()))


def _serve(settings: Settings, banner: str | None = None, *, with_worker: bool = False, workers: int = 1) -> None:
    import uvicorn

    from paygate.api import create_app
    from paygate.app import Gateway
    from paygate.kit.logs import configure

    configure(settings.log_level, settings.log_format)
    _upgrade(settings)
    if banner:
        typer.echo(banner)
    # paygate writes its own access log (RequestContextMiddleware); uvloop + httptools are the fast pair
    server: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_level": "warning",
        "loop": "uvloop",
        "http": "httptools",
        "server_header": False,
    }
    if workers > 1:  # N processes accepting on one socket; each builds its Gateway from the environment
        os.environ["PAYGATE_HOST"], os.environ["PAYGATE_PORT"] = settings.host, str(settings.port)
        uvicorn.run("paygate.cli:api_process_app", factory=True, workers=workers, **server)
        return
    gateway = Gateway(settings)
    if with_worker:  # the API and the background jobs on one event loop (paygate demo)
        config = uvicorn.Config(create_app(gateway), **server)
        asyncio.run(_serve_with_worker(uvicorn.Server(config), gateway))
        return
    uvicorn.run(create_app(gateway), **server)


def api_process_app() -> ASGIApp:
    """The app of one ``paygate serve --workers N`` process (a uvicorn factory: settings from the environment)."""
    from paygate.api import create_app
    from paygate.app import Gateway
    from paygate.kit.logs import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_format)
    return create_app(Gateway(settings))


async def _serve_with_worker(server: uvicorn.Server, gateway: Gateway) -> None:
    from paygate.worker.jobs import default_jobs
    from paygate.worker.runner import Worker

    runner = Worker(gateway, default_jobs(gateway))
    task = asyncio.create_task(runner.run())
    try:
        await server.serve()
    finally:
        runner.stop()
        await task
        await gateway.close()


@app.command()
def worker() -> None:
    """Run the background jobs: outbox relay (+ NATS), webhook deliveries, inbound processor webhooks, status sync.

    Several workers may run against one PostgreSQL database; SIGTERM finishes or hands back in-flight jobs."""
    from paygate.app import Gateway
    from paygate.kit.logs import configure
    from paygate.worker.jobs import default_jobs
    from paygate.worker.runner import Worker

    settings = get_settings()
    configure(settings.log_level, settings.log_format)
    _upgrade(settings)

    async def go() -> None:
        gateway = Gateway(settings)
        runner = Worker(gateway, default_jobs(gateway))
        runner.install_signals()
        try:
            await runner.run()
        finally:
            await gateway.close()

    # uvloop where uvicorn[standard] installs it, as `serve` runs on: its transports cost the worker's many small
    # database round trips less CPU than asyncio's selector loop (py-spy: a quarter of its samples in its write).
    try:
        import uvloop
    except ImportError:  # platforms uvicorn[standard] installs no uvloop on
        asyncio.run(go())
    else:
        uvloop.run(go())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes sharing the port")] = 1,
) -> None:
    """Run the HTTP API (applies pending migrations first)."""
    settings = get_settings()
    settings = settings.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    _serve(settings, workers=workers)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo database and keys live")] = Path("var/demo"),
) -> None:
    """One command for a newcomer: SQLite, a seeded demo merchant, keys and URLs printed, the API running."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{data_dir / 'paygate.db'}"
    settings = Settings(
        database_url=url,
        host=host,
        port=port,
        log_format="console",
        access_log=False,
        webhook_allowlist="127.0.0.1,::1,localhost",  # local webhook receivers work in the demo
    )
    _upgrade(settings)
    keys_file = data_dir / "demo-merchant.json"
    if keys_file.exists():
        m = json.loads(keys_file.read_text())
    else:
        m = asyncio.run(_create_merchant(settings, "Demo Store"))
        keys_file.write_text(json.dumps(m, indent=2))
        os.chmod(keys_file, stat.S_IRUSR | stat.S_IWUSR)
    base = f"http://{host}:{port}"
    banner = f"""
paygate demo — SQLite at {data_dir / "paygate.db"}, in-process sandbox processor

  API             {base}
  API docs        {base}/docs
  merchant        {m["id"]} (Demo Store)
  secret key      {m["secret_key"]}
  publishable key {m["publishable_key"]}

Try it:
  curl {base}/v1/payment_intents -u {m["secret_key"]}: \\
       -d amount=2000 -d currency=usd -d payment_method=pm_card_visa -d confirm=true

  python -c "import stripe; c = stripe.StripeClient('{m["secret_key"]}', base_addresses={{'api': '{base}'}}); \\
print(c.v1.payment_intents.create(params={{'amount': 2000, 'currency': 'usd'}}).id)"

Test payment methods: pm_card_visa, pm_card_mastercard, pm_card_amex (succeed), pm_card_chargeDeclined,
pm_card_chargeDeclinedInsufficientFunds, pm_card_chargeDeclinedExpiredCard, pm_card_authenticationRequired.
Press Ctrl+C to stop.
"""
    _serve(settings, banner, with_worker=True)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8765,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Latency added to every API request")] = 0,
    error_rate: Annotated[
        float, typer.Option("--error-rate", help="Share of requests answered 500 before acceptance")
    ] = 0.0,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where to send signed webhooks ('{dialect}' is replaced)")
    ] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="Webhook signing secret")] = None,
) -> None:
    """Run the PSP simulator (native, Stripe and Adyen dialects; admin and inspection API under /_sim/)."""
    from paygate.simulator import serve as serve_simulator

    if not 0.0 <= error_rate <= 1.0:
        raise typer.BadParameter("must be between 0 and 1", param_hint="--error-rate")
    typer.echo(f"paygate simulator on http://{host}:{port} (docs/simulator.md)")
    serve_simulator(host, port, latency_ms=latency_ms, error_rate=error_rate, webhook_url=webhook_url,
                    webhook_secret=webhook_secret)  # fmt: skip


@app.command()
def bench(
    url: Annotated[
        str | None, typer.Option(help="A running gateway; default: start one (API, worker, simulator)")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Secret key for --url")] = None,
    scenario: Annotated[str, typer.Option(help="card | two-step | manual-capture | mixed")] = "card",
    concurrency: Annotated[int, typer.Option(help="Requests in flight")] = 16,
    duration: Annotated[float | None, typer.Option(help="Seconds to measure (default 10)")] = None,
    count: Annotated[int | None, typer.Option(help="Or: payments to measure")] = None,
    warmup: Annotated[float, typer.Option(help="Seconds of load before measuring")] = 2.0,
    latency_ms: Annotated[int, typer.Option("--latency-ms", help="Processor latency the simulator adds")] = 0,
    database_url: Annotated[str | None, typer.Option(help="Database for the own stack (default: new SQLite)")] = None,
    api_processes: Annotated[int, typer.Option(help="API processes of the own stack")] = 1,
    loadgen_processes: Annotated[int | None, typer.Option(help="Load generator processes")] = None,
    processor: Annotated[str, typer.Option(help="simulator (own process) | sandbox (in-process)")] = "simulator",
    simulator_url: Annotated[str | None, typer.Option(help="With --url: its simulator (processor checks)")] = None,
    sqlite_synchronous: Annotated[str | None, typer.Option(help="PRAGMA synchronous for SQLite runs")] = None,
    floor: Annotated[
        bool, typer.Option("--floor", help="Also measure the bare reference app; print the ratio")
    ] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON to this file")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the payment mix and amounts")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the run directory (process logs)")] = False,
) -> None:
    """Benchmark paygate over loopback HTTP like merchants call it; check that no payment was lost or duplicated.

    Exit status 1 when a payment was lost or duplicated or the ledger does not verify (docs/performance.md)."""
    from paygate.bench.options import BenchOptions, OptionError
    from paygate.bench.report import print_table, write_json
    from paygate.bench.run import BenchError, run_bench

    options = BenchOptions(
        scenario=scenario, concurrency=concurrency, duration=duration, count=count, warmup=warmup,
        latency_ms=latency_ms, url=url, key=key, simulator_url=simulator_url, database_url=database_url,
        api_processes=api_processes, loadgen_processes=loadgen_processes, processor=processor, floor=floor,
        json_path=json_path, sqlite_synchronous=sqlite_synchronous, seed=seed, quiet=quiet, keep=keep,
    )  # fmt: skip
    try:
        options.validate()
        result = run_bench(options)
    except OptionError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.option) from exc
    except BenchError as exc:
        typer.echo(f"bench failed: {exc}", err=True)
        raise typer.Exit(2) from exc
    print_table(result)
    if json_path is not None:
        write_json(result, json_path)
    v = result.verification
    if v.lost or v.duplicated or v.ledger_ok is False:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
