"""The Alembic migrations and ``paygate.db.tables`` describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, CheckConstraint, Column, Connection, MetaData, create_engine, inspect, text

from paygate.db.engine import sync_url
from paygate.db.migrate import alembic_config, current_revision, head_revisions, upgrade
from paygate.db.tables import metadata
from tests.support.databases import create_postgres, create_sqlite, drop_postgres

pytestmark = pytest.mark.db


@pytest.fixture
def conn(database_url: str) -> Iterator[Connection]:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def _diff(conn: Connection, target: MetaData) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(ctx, target))


def test_database_is_at_every_head(database_url: str) -> None:
    applied = set((current_revision(database_url) or "").split(","))
    assert applied == set(head_revisions())


def test_migrated_schema_matches_table_definitions(conn: Connection) -> None:
    assert _diff(conn, metadata) == []


def test_check_constraints_match_table_definitions(conn: Connection) -> None:
    """Alembic's comparison ignores CHECK constraints; the money invariants live in them, so compare by name."""
    insp = inspect(conn)
    for table in metadata.sorted_tables:
        declared = {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
        migrated = {str(c["name"]) for c in insp.get_check_constraints(table.name)}
        assert declared == migrated, table.name
    assert "ck_payment_intents_refunds_within_received" in {
        c["name"] for c in insp.get_check_constraints("payment_intents")
    }


def test_comparison_detects_a_drift(conn: Connection) -> None:
    """The comparison is not vacuous: a column the migrations lack is reported."""
    drifted = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["payment_intents"].append_column(Column("surprise", BigInteger, nullable=True))
    diff = _diff(conn, drifted)
    assert [d[0] for d in diff] == ["add_column"]
    assert diff[0][2] == "payment_intents"
    assert diff[0][3].name == "surprise"


def test_upgrade_again_changes_nothing(database_url: str) -> None:
    before = current_revision(database_url)
    upgrade(database_url)
    assert current_revision(database_url) == before
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            assert _diff(connection, metadata) == []
    finally:
        engine.dispose()


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own, migrated to every head (this test moves it up and down)."""
    if backend == "sqlite":
        yield create_sqlite(tmp_path)
        return
    url, name = create_postgres()
    yield url
    drop_postgres(name)


def _event(conn: Connection, event_id: str, created: int, relayed_at: int | None) -> None:
    conn.execute(
        text(
            "INSERT INTO events (id, merchant_id, livemode, type, data, created, relayed_at)"
            " VALUES (:id, 'acct_m', false, 'payment_intent.created', '{}', :created, :relayed_at)"
        ),
        {"id": event_id, "created": created, "relayed_at": relayed_at},
    )


def test_the_event_outbox_migration_queues_exactly_the_unrelayed_events_and_back(fresh_url: str) -> None:
    engine = create_engine(sync_url(fresh_url))
    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006_work_queue_indexes")
            _event(conn, "evt_waiting", 100, None)
            _event(conn, "evt_relayed", 101, 150)
        upgrade(fresh_url)
        with engine.begin() as conn:
            queued = conn.execute(text("SELECT created, event_id FROM event_outbox")).all()
            assert [tuple(r) for r in queued] == [(100, "evt_waiting")]
            _event(conn, "evt_after", 102, None)  # written and relayed under 0007: never in the outbox now
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006_work_queue_indexes")
            relayed = dict(conn.execute(text("SELECT id, relayed_at FROM events ORDER BY id")).all())
        assert relayed == {"evt_after": 102, "evt_relayed": 150, "evt_waiting": None}
    finally:
        engine.dispose()
