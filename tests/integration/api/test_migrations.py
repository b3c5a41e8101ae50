"""The Alembic migrations and ``paygate.db.tables`` describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, CheckConstraint, Column, Connection, MetaData, create_engine, inspect

from paygate.db.engine import sync_url
from paygate.db.migrate import current_revision, head_revisions, upgrade
from paygate.db.tables import metadata

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
