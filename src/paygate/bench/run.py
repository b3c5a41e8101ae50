"""One ``paygate bench`` invocation: stack up, load, check, (floor), report.

Order, and why:

1. start the stack (or reach ``--url``), count database rows;
2. run the load phase against paygate: warm-up, then the measured window; CPU and RSS of the gateway's processes
   are read at the window's start and end;
3. check correctness (:mod:`paygate.bench.verify`) while the stack still runs, then stop it;
4. with ``--floor``, run the same load phase against the floor app (:mod:`paygate.bench.floor`) on the same
   database engine, with as many rows per payment as paygate wrote in step 2 — after the stack is stopped, so the
   two phases have the machine to themselves in turn.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
import time
from array import array
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

from paygate.bench.loadgen import SLOTS, GeneratorSpec, Schedule, start_generators
from paygate.bench.options import BenchOptions
from paygate.bench.report import PhaseProgress
from paygate.bench.results import BenchResult, Phase
from paygate.bench.stack import (
    ProcessGroup,
    Stack,
    busy_cpu_seconds,
    cpu_spent,
    database_server_group,
    external_stack,
    free_port,
    spawn,
    start_stack,
    wait_http,
)
from paygate.bench.verify import Verification, verify_run

__all__ = ["BenchError", "run_bench"]


class BenchError(RuntimeError):
    """The run could not be completed (a process did not start, a generator failed…); ``run_dir`` keeps the
    processes' logs."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(f"{message}\n(logs kept in {run_dir})")
        self.run_dir = run_dir


POLL = 0.2


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _database_kind(url: str | None) -> str:
    if url is None:
        return "unknown"
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def count_rows(database_url: str) -> int:
    """Rows in every paygate table (the floor's own table and Alembic's excluded)."""
    from sqlalchemy import create_engine, inspect, text

    from paygate.bench.floor import TABLE
    from paygate.db.engine import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            names = [n for n in inspect(conn).get_table_names() if n not in (TABLE, "alembic_version")]
            return sum(int(conn.execute(text(f'SELECT count(*) FROM "{n}"')).scalar_one()) for n in names)
    finally:
        engine.dispose()


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (``tmpfs``, ``ext4``…), from the mount table."""
    import psutil  # type: ignore[import-untyped]

    best: tuple[int, str | None] = (-1, None)
    resolved = str(path.resolve())
    for part in psutil.disk_partitions(all=True):
        mount = str(part.mountpoint)
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) > best[0]:
            best = (len(mount), str(part.fstype))
    return best[1]


def database_bytes(database_url: str) -> int | None:
    """Size of the database (SQLite: pages in use, WAL content included; PostgreSQL: ``pg_database_size``)."""
    from sqlalchemy import create_engine, text

    from paygate.db.engine import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            if database_url.startswith("sqlite"):
                pages = int(conn.execute(text("PRAGMA page_count")).scalar_one())
                free = int(conn.execute(text("PRAGMA freelist_count")).scalar_one())
                return (pages - free) * int(conn.execute(text("PRAGMA page_size")).scalar_one())
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def measure(
    label: str,
    url: str,
    secret_key: str,
    options: BenchOptions,
    run_id: str,
    run_dir: Path,
    groups: dict[str, ProcessGroup],
    *,
    scenario: str,
) -> tuple[Phase, list[Path]]:
    """Drive one load phase; returns what it measured and the generators' payment files."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    count = options.count
    n_gen = options.generator_count()
    users = _split(options.concurrency, n_gen)
    quotas: list[int | None] = list(_split(count, n_gen)) if count is not None else [None] * n_gen
    files = [run_dir / f"{label}-payments-{i}.txt" for i in range(n_gen)]
    specs = [
        GeneratorSpec(
            index=i,
            host=parts.hostname,
            port=parts.port or 80,
            base_path=parts.path,
            secret_key=secret_key,
            scenario=scenario,
            users=users[i],
            run_id=run_id,
            seed=options.seed if options.seed is not None else secrets.randbits(32),
            timeout=options.timeout,
            quota=quotas[i],
            payments_file=str(files[i]),
        )
        for i in range(n_gen)
    ]
    phase = Phase(label)
    handles, progress = start_generators(specs)
    bar: PhaseProgress | None = None
    try:
        for handle in handles:
            handle.wait_ready(120)
        start = time.monotonic() + 0.1
        warmup_end = start + options.warmup
        stop_at = warmup_end + options.measure_seconds if count is None else None
        for handle in handles:
            handle.start(Schedule(start, warmup_end, stop_at))
        total = float(count) if count is not None else options.warmup + options.measure_seconds
        bar = PhaseProgress(label, total, by_count=count is not None, quiet=options.quiet)

        def counters() -> tuple[int, int, int]:
            snap = list(progress)
            return (
                sum(snap[i * SLOTS] for i in range(n_gen)),
                sum(snap[i * SLOTS + 1] for i in range(n_gen)),
                sum(snap[i * SLOTS + 2] for i in range(n_gen)),
            )

        def tick(stage: str) -> int:
            assert bar is not None
            now = time.monotonic()
            measured, done, errors = counters()
            rate = measured / (now - warmup_end) if now > warmup_end + 0.05 else None
            completed = measured if count is not None else max(0.0, now - start)
            bar.update(completed=completed, stage=stage, rate=rate, done=done, errors=errors)
            return measured

        def finished() -> bool:
            return all(h.pipe.poll() or not h.process.is_alive() for h in handles)

        while time.monotonic() < warmup_end and not finished():
            tick("warm-up")
            time.sleep(min(POLL, max(0.0, warmup_end - time.monotonic())))
        groups = {**groups, "loadgen": ProcessGroup("loadgen", [h.process.pid for h in handles if h.process.pid])}
        for group in groups.values():
            group.refresh()
        machine_start, cpu_clock_start = busy_cpu_seconds(), time.monotonic()
        cpu_start = {role: g.cpu_seconds() for role, g in groups.items()}
        phase.rss_start = {role: g.rss_bytes() for role, g in groups.items()}
        sample_every = max(1.0, options.measure_seconds / 20)
        next_sample = time.monotonic() + sample_every
        while not finished():
            measured = tick("measure")
            if "api" in groups and time.monotonic() >= next_sample:
                phase.rss_samples.append((round(time.monotonic() - warmup_end, 1), sum(groups["api"].rss_bytes())))
                next_sample += sample_every
            if stop_at is not None and time.monotonic() >= stop_at:
                break
            if count is not None and measured >= count:
                break
            wait = POLL if stop_at is None else min(POLL, max(0.0, stop_at - time.monotonic()))
            time.sleep(wait)
        phase.cpu_seconds = {role: cpu_spent(cpu_start[role], g.cpu_seconds()) for role, g in groups.items()}
        phase.cpu_seconds["machine"] = busy_cpu_seconds() - machine_start
        phase.cpu_window_seconds = time.monotonic() - cpu_clock_start
        phase.rss_end = {role: g.rss_bytes() for role, g in groups.items()}
        tick("finish")
        results = [h.result(options.timeout * 4 + 60) for h in handles]
        tick("done")
    finally:
        if bar is not None:
            bar.close()
        for handle in handles:
            handle.stop()
    failures = [r.failure for r in results if r.failure]
    if failures:
        raise RuntimeError(f"load generator failed: {failures[0]}")
    for r in results:
        phase.measured += r.measured
        phase.payments_total += r.payments
        phase.latencies.extend(array("d", r.latencies))
        phase.gateway_added.extend(array("d", r.gateway_added))
        phase.processor.extend(array("d", r.processor))
        for k, n in r.errors.items():
            phase.errors[k] = phase.errors.get(k, 0) + n
        for k, n in r.measured_by_kind.items():
            phase.by_kind[k] = phase.by_kind.get(k, 0) + n
    if stop_at is not None:
        phase.window_seconds = stop_at - warmup_end
    else:
        ends = [r.last_measured_end for r in results if r.last_measured_end is not None]
        phase.window_seconds = max(ends) - warmup_end if ends else 0.0
    phase.finish()
    return phase, files


def _floor_database(options: BenchOptions, stack_db: str | None, run_dir: Path, run_id: str) -> str:
    """SQLite: a new file beside paygate's (same filesystem). PostgreSQL: paygate's database, own table."""
    if stack_db is None or stack_db.startswith("sqlite"):
        from paygate.bench.floor import sqlite_path

        folder = Path(sqlite_path(stack_db)).parent if stack_db else run_dir
        return f"sqlite:///{folder / f'bench-floor-{run_id}.db'}"
    return stack_db


def run_floor(options: BenchOptions, run_id: str, run_dir: Path, database_url: str, rows: int) -> Phase:
    import os

    from paygate.bench.floor import create_table, drop_table

    create_table(database_url)
    key = "sk_test_floor_" + secrets.token_hex(12)
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "PAYGATE_BENCH_FLOOR_DATABASE_URL": database_url,
            "PAYGATE_BENCH_FLOOR_KEY": key,
            "PAYGATE_BENCH_FLOOR_ROWS": str(rows),
            "PAYGATE_BENCH_FLOOR_POOL_SIZE": os.environ.get("PAYGATE_DB_POOL_SIZE", "10"),
            "PAYGATE_BENCH_FLOOR_SQLITE_SYNCHRONOUS": (
                options.sqlite_synchronous or os.environ.get("PAYGATE_SQLITE_SYNCHRONOUS", "FULL")
            ).upper(),
        }
    )
    proc = spawn("floor", ["-m", "paygate.bench.floor", str(port), str(options.api_processes)], env, run_dir)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", timeout=60, alive=proc)
        group = ProcessGroup("floor", [proc.popen.pid])
        deadline = time.monotonic() + 60
        while options.api_processes > 1 and len(group.serving()) < options.api_processes:
            if time.monotonic() > deadline:
                raise RuntimeError("the floor's processes did not all start")
            time.sleep(0.1)
            group.refresh()
        groups = {"api": group}
        database = database_server_group(database_url)
        if database is not None:
            groups["database"] = database
        phase, _files = measure("floor", url, key, options, run_id + "f", run_dir, groups, scenario="card")
    finally:
        proc.stop()
        if database_url.startswith("sqlite"):
            from paygate.bench.floor import sqlite_path

            for suffix in ("", "-wal", "-shm"):
                Path(sqlite_path(database_url) + suffix).unlink(missing_ok=True)
        else:
            drop_table(database_url)
    return phase


def _configure_external_simulator(simulator_url: str, changes: dict[str, object]) -> dict[str, object] | None:
    """Apply settings to a simulator we did not start; returns the previous values (None if it refused)."""
    try:
        before = httpx2.get(f"{simulator_url}/_sim/config", timeout=5).json()
        r = httpx2.post(f"{simulator_url}/_sim/config", json=changes, timeout=5)
    except httpx2.HTTPError:
        return None
    if r.status_code != 200:
        return None
    return {k: before.get(k) for k in changes}


def run_bench(options: BenchOptions, *, stack: Stack | None = None) -> BenchResult:
    """Run everything ``options`` asks for and return the result (printing and JSON are the caller's).

    ``stack``: a stack the caller started with :func:`paygate.bench.stack.start_stack` and stops itself (tests
    share one between runs); its processes are measured as in an own-stack run. ``options.url`` must then be
    unset."""
    options.validate()
    run_id = secrets.token_hex(3)
    run_dir = Path(tempfile.mkdtemp(prefix=f"paygate-bench-{run_id}-"))
    notes: list[str] = []
    ok = False
    borrowed = stack is not None
    keep = options.keep
    restore: dict[str, object] | None = None
    try:
        if stack is None:
            stack = start_stack(options, run_dir) if options.url is None else external_stack(options, run_dir)
        if not stack.own and stack.simulator_url:
            changes: dict[str, object] = {"tally_metadata_key": "bench_ref"}
            if options.latency_ms:
                changes["latency_ms"] = options.latency_ms
            restore = _configure_external_simulator(stack.simulator_url, changes)
            if restore is None:
                notes.append("the simulator refused the tally setting: processor-side checks skipped")
                stack.simulator_url = None
        if stack.database_url and stack.database_url.startswith("sqlite"):
            from paygate.bench.floor import sqlite_path

            if filesystem_type(Path(sqlite_path(stack.database_url)).parent) == "tmpfs":
                notes.append("the SQLite file is on tmpfs, where fsync costs nothing: set TMPDIR to a disk")
        rows_before = count_rows(stack.database_url) if stack.database_url else None
        bytes_before = database_bytes(stack.database_url) if stack.database_url else None
        since = int(time.time()) - 1
        phase, files = measure(
            "paygate", stack.url, stack.secret_key, options, run_id, run_dir, stack.groups, scenario=options.scenario
        )
        verification: Verification = verify_run(
            files,
            url=stack.url,
            secret_key=stack.secret_key,
            since=since,
            run_id=run_id,
            simulator_url=stack.simulator_url,
            database_url=stack.database_url,
        )
        rows_per_payment = bytes_per_payment = None
        if rows_before is not None and stack.database_url and phase.payments_total:
            rows_per_payment = (count_rows(stack.database_url) - rows_before) / phase.payments_total
            after = database_bytes(stack.database_url)
            if after is not None and bytes_before is not None:
                bytes_per_payment = (after - bytes_before) / phase.payments_total
        if not stack.own:
            notes.append("--url: CPU seconds and RSS are not measured (the gateway's processes are not ours)")
        if not verification.processor_checked:
            notes.append("no processor record: only gateway-side duplicates were checked")
        if not borrowed:
            stack.stop()
        floor_phase = None
        if options.floor:
            floor_db = _floor_database(options, stack.database_url, run_dir, run_id)
            rows = max(1, round(rows_per_payment)) if rows_per_payment else 9
            floor_phase = run_floor(options, run_id, run_dir, floor_db, rows)
        result = BenchResult(
            options=options,
            run_id=run_id,
            database=_database_kind(stack.database_url),
            gateway=phase,
            verification=verification,
            floor=floor_phase,
            rows_per_payment=None if rows_per_payment is None else round(rows_per_payment, 2),
            database_bytes_per_payment=None if bytes_per_payment is None else round(bytes_per_payment),
            notes=notes,
        )
        if phase.error_count or verification.lost or verification.duplicated or verification.ledger_ok is False:
            keep = True
        if keep:
            notes.append(f"run directory (process logs, payment files) kept in {run_dir}")
        ok = True
        return result
    except (RuntimeError, OSError, httpx2.HTTPError) as exc:
        raise BenchError(f"{type(exc).__name__}: {exc}", run_dir) from exc
    finally:
        if stack is not None and not borrowed:
            stack.stop()
        if restore and stack is not None and stack.simulator_url:
            with contextlib.suppress(httpx2.HTTPError):
                httpx2.post(f"{stack.simulator_url}/_sim/config", json=restore, timeout=5)
        if ok and not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
