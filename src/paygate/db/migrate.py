"""Apply Alembic migrations programmatically (``paygate db upgrade``; ``paygate serve`` calls it at start).

Concurrent starts are safe on PostgreSQL: the upgrade runs under a transaction-level advisory lock, so two API
processes starting together apply each migration once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from paygate.db.engine import sync_url

__all__ = ["alembic_config", "current_revision", "head_revisions", "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x7061_7967  # "payg"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revisions() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revision(url: str) -> str | None:
    """The applied revision(s), comma-separated when independent branches are applied side by side."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
            return ",".join(sorted(heads)) or None
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: every head, so independent feature branches
    of the migration graph apply side by side). Idempotent."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            else:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
