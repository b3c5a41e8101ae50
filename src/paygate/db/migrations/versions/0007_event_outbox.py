"""event outbox: the relay's queue in a narrow table of its own, so that events are written once

The relay found unrelayed events through ``events.relayed_at IS NULL`` and set ``relayed_at`` once it had
handed them on. Setting it rewrote every event row (~1.5 KB: the whole object) with new index entries — a
non-HOT update, since the column is in the partial index's predicate — so each event was written twice, and
PostgreSQL's statement statistics put the relay's UPDATE at tens of µs per event. Now each event also gets a row
in ``event_outbox`` (its creation time and id) in the same transaction, and the relay deletes that row when it
has handed the event on. ``events`` is insert-only; ``relayed_at`` is no longer written (left for a later
release to drop, so that processes of the previous release keep working during a rolling deploy; they would
see every new event as unrelayed, which their fan-out's ON CONFLICT and the brokers' deduplication absorb).

Revision ID: 0007_event_outbox
Revises: 0006_work_queue_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_event_outbox"
down_revision = "0006_work_queue_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("created", "event_id", name="pk_event_outbox"),
    )
    op.execute("INSERT INTO event_outbox (created, event_id) SELECT created, id FROM events WHERE relayed_at IS NULL")
    op.drop_index("ix_events_outbox", table_name="events")


def downgrade() -> None:
    op.execute(
        "UPDATE events SET relayed_at = created WHERE relayed_at IS NULL"
        " AND id NOT IN (SELECT event_id FROM event_outbox)"
    )
    op.create_index(
        "ix_events_outbox",
        "events",
        ["created", "id"],
        postgresql_where=sa.text("relayed_at IS NULL"),
        sqlite_where=sa.text("relayed_at IS NULL"),
    )
    op.drop_table("event_outbox")
