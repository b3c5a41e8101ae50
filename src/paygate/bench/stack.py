"""The system under test: either the bench's own stack of OS processes or a gateway that is already running.

:func:`start_stack` (no ``--url``) starts, in this order, each as its own process with its output in the run
directory: the PSP simulator (``python -m paygate.simulator``, bounded memory, authorizations tallied per
``metadata[bench_ref]``), the API (``paygate serve --workers N``), and the worker (``paygate worker``); it migrates
the database and creates a fresh merchant first. The database is a new SQLite file in the run directory unless
``--database-url`` names one. With ``--processor sandbox`` no simulator runs and the gateway uses its in-process
sandbox processor.

:class:`ProcessGroup` reads CPU seconds and RSS of a set of processes with psutil (children of the API supervisor
included), which is how the report gets CPU seconds per payment and memory at start and end.
:func:`database_server_group` finds a local PostgreSQL server's processes, so that the database's share of a
payment's CPU is measured too.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx2
import psutil  # type: ignore[import-untyped]

from paygate.bench.options import BenchOptions

__all__ = [
    "ManagedProcess",
    "ProcessGroup",
    "Stack",
    "busy_cpu_seconds",
    "cpu_spent",
    "database_server_group",
    "free_port",
    "start_stack",
    "wait_http",
]

TALLY_KEY = "bench_ref"
SIMULATOR_RETAIN_PAYMENTS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, timeout: float, alive: ManagedProcess | None = None) -> None:
    """Poll ``url`` until it answers 200; raise (with the process log tail) if it does not in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if alive is not None and alive.popen.poll() is not None:
            raise RuntimeError(f"{alive.name} exited with {alive.popen.returncode}:\n{alive.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{alive.log_tail()}" if alive is not None else ""
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s{tail}")
        time.sleep(0.05)


@dataclass
class ManagedProcess:
    """A child process the bench started (and is the only one to stop)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()


def spawn(name: str, args: list[str], env: dict[str, str], run_dir: Path) -> ManagedProcess:
    log_path = run_dir / f"{name}.log"
    log = log_path.open("ab")
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments built here
        [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    return ManagedProcess(name, popen, log_path, log)


class ProcessGroup:
    """CPU and memory of one role (API, worker, simulator): the process and its worker children."""

    def __init__(self, name: str, root_pids: list[int]) -> None:
        self.name = name
        self.root_pids = root_pids
        self.processes: list[psutil.Process] = []
        self.refresh()

    def refresh(self) -> None:
        procs: list[psutil.Process] = []
        for pid in self.root_pids:
            try:
                root = psutil.Process(pid)
                workers = [c for c in root.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
            except psutil.Error:
                continue
            procs.extend([root, *workers])
        self.processes = procs

    def serving(self) -> list[psutil.Process]:
        """The processes doing the work: a supervisor's children when it has any, else the roots."""
        roots = {p.pid for p in self.processes if p.pid in self.root_pids}
        children = [p for p in self.processes if p.pid not in roots]
        return children or [p for p in self.processes if p.pid in roots]

    def cpu_seconds(self) -> dict[int, float]:
        """CPU seconds (user + system) each process has used so far, by pid; subtract two readings with
        :func:`cpu_spent`."""
        out: dict[int, float] = {}
        for proc in self.processes:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            out[proc.pid] = t.user + t.system
        return out

    def rss_bytes(self) -> list[int]:
        out: list[int] = []
        for proc in self.serving():
            try:
                out.append(proc.memory_info().rss)
            except psutil.Error:
                continue
        return out


def cpu_spent(start: dict[int, float], end: dict[int, float]) -> float:
    """CPU seconds used between two :meth:`ProcessGroup.cpu_seconds` readings by the processes in both (one that
    exited in between is left out rather than counted negative)."""
    return sum(end[pid] - spent for pid, spent in start.items() if pid in end)


def busy_cpu_seconds() -> float:
    """CPU seconds all of this machine's cores have spent busy since boot (user, nice, system, interrupts; not
    idle, I/O wait, or time the hypervisor stole): the whole machine's share of a payment, whoever spent it."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def database_server_group(database_url: str | None) -> ProcessGroup | None:
    """The processes of the PostgreSQL server behind ``database_url`` when it runs on this machine (found as the
    parent of the backend serving a connection); ``None`` for SQLite (its work runs inside the API process), a
    remote server, or one that cannot be asked. The group holds the whole server — every backend, the WAL writer,
    the checkpointer —, so its CPU counts other databases' work too: measure on an otherwise idle server."""
    if not database_url or not database_url.startswith("postgresql"):
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    from paygate.db.engine import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        server = psutil.Process(backend).parent()
        if server is None or "postgres" not in server.name():
            return None
        return ProcessGroup("database", [server.pid])
    except (SQLAlchemyError, psutil.Error):
        return None
    finally:
        engine.dispose()


@dataclass
class Stack:
    """Where the load goes and what the checks can reach. Own stacks also carry their processes."""

    url: str
    secret_key: str
    database_url: str | None
    simulator_url: str | None
    run_dir: Path
    own: bool
    processes: list[ManagedProcess] = field(default_factory=list)
    groups: dict[str, ProcessGroup] = field(default_factory=dict)

    def stop(self) -> None:
        for proc in reversed(self.processes):  # worker and API before the simulator they call
            proc.stop()
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.log_tail()}" for p in self.processes)


def _sqlite_dir(url: str) -> None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)


async def _create_merchant(database_url: str, name: str) -> str:
    from paygate.db.engine import Database
    from paygate.merchants.service import create_merchant

    db = Database(database_url, pool_size=1)
    try:
        async with db.write() as conn:
            merchant = await create_merchant(conn, name)
    finally:
        await db.dispose()
    return merchant.secret_key


def prepare_database(database_url: str) -> None:
    """Migrate the bench's database and, on PostgreSQL, ``VACUUM ANALYZE`` it: rows left dead by earlier runs
    would otherwise lower the figures run after run on a server without autovacuum (this machine's has it
    off: 17 % fewer payments/s after a few dozen runs). Raises ``RuntimeError`` (one line: which database and
    why) when it cannot be reached or used, e.g. a PostgreSQL database that does not exist (the bench does not
    create it)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from paygate.db.engine import sync_url
    from paygate.db.migrate import upgrade

    _sqlite_dir(database_url)
    try:
        upgrade(database_url)
        if make_url(database_url).get_backend_name() == "postgresql":
            engine = create_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            finally:
                engine.dispose()
    except DBAPIError as exc:
        shown = make_url(database_url).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[-1] if exc.orig is not None else type(exc).__name__
        raise RuntimeError(f"cannot use the database {shown}: {reason}") from exc


def child_env(options: BenchOptions, run_dir: Path, database_url: str, simulator_url: str | None) -> dict[str, str]:
    """The environment of the gateway processes: the caller's ``PAYGATE_*`` tuning (pool size…) is kept, what
    the bench decides is overridden."""
    env = dict(os.environ)
    env.pop("PAYGATE_SIMULATOR_URL", None)
    env.update(
        {
            "PAYGATE_DATABASE_URL": database_url,
            "PAYGATE_VAULT_KEY_FILE": str(run_dir / "vault-keys.json"),
            "PAYGATE_VAULT_SECRET": secrets.token_urlsafe(48),
            "PAYGATE_ACCESS_LOG": "false",
            "PAYGATE_LOG_LEVEL": "warning",
            "PAYGATE_HOST": "127.0.0.1",
        }
    )
    if simulator_url:
        env["PAYGATE_SIMULATOR_URL"] = simulator_url
    if options.sqlite_synchronous:
        env["PAYGATE_SQLITE_SYNCHRONOUS"] = options.sqlite_synchronous.upper()
    return env


def start_stack(options: BenchOptions, run_dir: Path, *, startup_timeout: float = 60.0) -> Stack:
    """Start simulator (unless sandbox), API and worker; returns when all answer. Stops what it started on error.

    Slow steps overlap: the simulator boots while the database is migrated, the worker while the API boots."""
    database_url = options.database_url or f"sqlite:///{run_dir / 'paygate.db'}"
    stack = Stack("", "", database_url, None, run_dir, own=True)
    try:
        sim: ManagedProcess | None = None
        if options.processor == "simulator":
            sim_port = free_port()
            stack.simulator_url = f"http://127.0.0.1:{sim_port}"
            sim_args = ["-m", "paygate.simulator", "--port", str(sim_port), "--latency-ms", str(options.latency_ms)]
            sim_args += ["--retain-payments", str(SIMULATOR_RETAIN_PAYMENTS), "--tally-metadata-key", TALLY_KEY]
            sim = spawn("simulator", sim_args, dict(os.environ), run_dir)
            stack.processes.append(sim)
        prepare_database(database_url)
        stack.secret_key = asyncio.run(_create_merchant(database_url, f"bench {run_dir.name}"))
        env = child_env(options, run_dir, database_url, stack.simulator_url)
        port = free_port()
        stack.url = f"http://127.0.0.1:{port}"
        serve_args = ["-m", "paygate.cli", "serve", "--port", str(port), "--workers", str(options.api_processes)]
        api = spawn("api", serve_args, env, run_dir)
        stack.processes.append(api)
        worker = spawn("worker", ["-m", "paygate.cli", "worker"], env, run_dir)
        stack.processes.append(worker)
        if sim is not None:
            wait_http(f"{stack.simulator_url}/_sim/health", timeout=startup_timeout, alive=sim)
            stack.groups["simulator"] = ProcessGroup("simulator", [sim.popen.pid])
        wait_http(f"{stack.url}/readyz", timeout=startup_timeout, alive=api)
        group = ProcessGroup("api", [api.popen.pid])
        deadline = time.monotonic() + startup_timeout
        while options.api_processes > 1 and len(group.serving()) < options.api_processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(group.serving())} of {options.api_processes} API processes started")
            time.sleep(0.1)
            group.refresh()
        stack.groups["api"] = group
        if worker.popen.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.popen.returncode}:\n{worker.log_tail()}")
        stack.groups["worker"] = ProcessGroup("worker", [worker.popen.pid])
        database = database_server_group(database_url)
        if database is not None:
            stack.groups["database"] = database
    except BaseException:
        stack.stop()
        raise
    return stack


def external_stack(options: BenchOptions, run_dir: Path) -> Stack:
    """A gateway started by someone else (``--url``): nothing to start or stop, no process metrics."""
    assert options.url is not None and options.key is not None
    wait_http(f"{options.url.rstrip('/')}/healthz", timeout=10)
    return Stack(
        options.url.rstrip("/"),
        options.key,
        options.database_url,
        options.simulator_url.rstrip("/") if options.simulator_url else None,
        run_dir,
        own=False,
    )
