"""Inbound processor webhooks, stored raw before anything else happens (migration ``0003_webhooks``).

Every request to ``POST /hooks/{connector}/{account}`` becomes one row, forged ones included (``status =
rejected``), so the raw evidence survives. ``event_id`` (the processor's own event id) is set only on verified
rows and is unique per (connector, account): that unique constraint is the deduplication. Rows waiting to be
applied are worker jobs claimed through :mod:`paygate.worker.claims` (``lease_owner`` / ``lease_expires_at``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint

from paygate.db.tables import metadata

__all__ = ["inbound_webhooks"]

inbound_webhooks = Table(
    "inbound_webhooks",
    metadata,
    Column("id", String(40), primary_key=True),  # ihk_…
    Column("connector", String(40), nullable=False),
    Column("account_id", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),  # exactly the bytes received (signatures cover them)
    Column("headers", Text, nullable=False),  # JSON object, lower-cased names
    Column("received_at", BigInteger, nullable=False),
    # received → rejected | duplicate | queued → applied | ignored | conflict | failed
    Column("status", String(16), nullable=False),
    Column("event_id", String(128), nullable=True),
    Column("event_type", String(80), nullable=True),
    Column("outcome", Text, nullable=True),  # what applying did, for operators
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=True),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("applied_at", BigInteger, nullable=True),
    UniqueConstraint("connector", "account_id", "event_id", name="uq_inbound_webhooks_event"),
    Index("ix_inbound_webhooks_due", "status", "next_attempt_at"),
)
