"""work-queue indexes: partial indexes for the worker's scans (outbox, status sync, refund resend)

Each worker job polls for the few rows that need work among millions that do not. A partial index holds only
those rows, in the order the job takes them, so a poll reads a handful of index entries whatever the size of
the table, and index entries of rows that have left the queue are skipped cheaply (PostgreSQL marks them dead on
the first scan that finds them so) instead of being re-checked against the heap on every poll.

Revision ID: 0006_work_queue_indexes
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_work_queue_indexes"
down_revision = "0001"
branch_labels = ("work_queues",)
depends_on = None

_OUTBOX = sa.text("relayed_at IS NULL")
_SYNC = sa.text("next_sync_at IS NOT NULL")
_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_index("ix_events_outbox")
    op.create_index("ix_events_outbox", "events", ["created", "id"], postgresql_where=_OUTBOX, sqlite_where=_OUTBOX)
    op.create_index(
        "ix_payment_attempts_sync", "payment_attempts", ["next_sync_at"], postgresql_where=_SYNC, sqlite_where=_SYNC
    )
    op.create_index("ix_refunds_pending", "refunds", ["updated"], postgresql_where=_PENDING, sqlite_where=_PENDING)


def downgrade() -> None:
    op.drop_index("ix_refunds_pending", table_name="refunds")
    op.drop_index("ix_payment_attempts_sync", table_name="payment_attempts")
    op.drop_index("ix_events_outbox", table_name="events")
    with op.batch_alter_table("events") as batch_op:
        batch_op.create_index("ix_events_outbox", ["relayed_at", "created"], unique=False)
