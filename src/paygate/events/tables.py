"""Tables of merchant webhooks: endpoints, one delivery per (event, endpoint), and every delivery attempt.

They live on the shared :data:`paygate.db.tables.metadata` (``paygate.db.tables`` imports this module at its
bottom, so Alembic and the schema tests see them). Migration: ``0003_webhooks``.

Deliveries are worker jobs: ``lease_owner`` / ``lease_expires_at`` implement the claiming protocol of
:mod:`paygate.worker.claims`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text, UniqueConstraint

from paygate.db.tables import BigId, metadata

__all__ = ["webhook_attempts", "webhook_deliveries", "webhook_endpoints"]

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),  # we_…
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("enabled_events", Text, nullable=False),  # JSON list; "*" means every event
    Column("metadata", Text, nullable=False, default="{}"),
    Column("status", String(16), nullable=False),  # enabled | disabled
    Column("disabled_reason", String(64), nullable=True),  # requested | gone (410) | failing
    # Signing secrets (whsec_…). They must be usable to sign, so they are stored, never returned after creation
    # or a roll. During a roll's overlap both secrets sign.
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", BigInteger, nullable=True),
    Column("failing_since", BigInteger, nullable=True),  # first failed attempt since the last success
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Index("ix_webhook_endpoints_list", "merchant_id", "livemode", "created", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # whdel_…
    Column("event_id", String(40), nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed | canceled
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("lease_owner", String(80), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), nullable=False, index=True),
    Column("event_id", String(40), nullable=False, index=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),  # 1-based
    Column("url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no HTTP answer (error says why)
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("response_excerpt", Text, nullable=True),  # first 500 characters of the answer
    Column("worker", String(80), nullable=True),
    Column("created", BigInteger, nullable=False),
)
