"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test session, migrated to head.

PostgreSQL comes from ``PAYGATE_TEST_POSTGRES_URL`` (default: the local server, user postgres, database test,
used only as the maintenance connection; the tests create and drop their own ``paygate_test_<pid>`` database).
When ``CI`` is set, an unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from paygate.db.migrate import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_admin_url() -> str:
    return os.environ.get("PAYGATE_TEST_POSTGRES_URL", DEFAULT_PG)


def selected_backends() -> list[str]:
    return [b.strip() for b in os.environ.get("PAYGATE_TEST_DATABASES", "sqlite,postgres").split(",") if b.strip()]


def create_sqlite(tmp: Path) -> str:
    url = f"sqlite:///{tmp / 'paygate-test.db'}"
    upgrade(url)
    return url


def create_postgres() -> tuple[str, str]:
    """Create and migrate a fresh database; returns (url, name). Skips (fails in CI) if unreachable."""
    admin = make_url(postgres_admin_url())
    name = f"paygate_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {admin.render_as_string()} is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable ({type(exc).__name__}); set PAYGATE_TEST_DATABASES=sqlite to silence")
    url = admin.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return url, name


def drop_postgres(name: str) -> None:
    engine = create_engine(make_url(postgres_admin_url()), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()
