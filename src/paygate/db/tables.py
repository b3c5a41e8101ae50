"""All tables, as SQLAlchemy Core ``Table`` objects (the hot path uses Core, not the ORM).

Conventions: ids are Stripe-style strings; ``created``/``updated`` are unix seconds; amounts are ``BigInteger``
minor units with a ``currency`` column beside them; JSON payloads are stored as text encoded with orjson by the
repositories (identical on SQLite and PostgreSQL). Alembic migrations are the source of truth for the schema;
``tests/integration/test_migrations.py`` proves these definitions and the migrations agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "api_keys",
    "event_outbox",
    "events",
    "idempotency_keys",
    "ledger_journals",
    "ledger_postings",
    "merchants",
    "metadata",
    "payment_attempts",
    "payment_intents",
    "refunds",
]

naming = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)


def _work_queue(name: str, where: str, *columns: str) -> Index:
    """A partial index over the rows a worker job still has to take, in the order it takes them: a poll reads
    a few entries whatever the table's size (migration 0006)."""
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


# 64-bit surrogate keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY (which is 64-bit there).
BigId = BigInteger().with_variant(Integer, "sqlite")

merchants = Table(
    "merchants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("raw_card_access", Boolean, nullable=False, default=False),
    Column("settings", Text, nullable=False, default="{}"),
    Column("created", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # secret | publishable
    Column("livemode", Boolean, nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # sha256 hex of the full key
    Column("redacted", String(40), nullable=False),  # e.g. sk_test_…a1B2
    Column("created", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    CheckConstraint("kind in ('secret', 'publishable')", name="kind"),
)

payment_intents = Table(
    "payment_intents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(32), nullable=False),
    Column("capture_method", String(16), nullable=False),
    Column("confirmation_method", String(16), nullable=False),
    Column("amount_capturable", BigInteger, nullable=False, default=0),
    Column("amount_received", BigInteger, nullable=False, default=0),
    # refunds: succeeded total, and the total of refunds sent to the processor whose outcome is not known yet.
    # amount_refunded + amount_refund_pending <= amount_received is enforced by a CHECK constraint.
    Column("amount_refunded", BigInteger, nullable=False, default=0),
    Column("amount_refund_pending", BigInteger, nullable=False, default=0),
    Column("payment_method", String(64), nullable=True),
    Column("payment_method_types", Text, nullable=False, default='["card"]'),
    Column("description", Text, nullable=True),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("last_payment_error", Text, nullable=True),
    Column("next_action", Text, nullable=True),
    Column("cancellation_reason", String(40), nullable=True),
    Column("canceled_at", BigInteger, nullable=True),
    Column("customer", String(40), nullable=True),
    Column("receipt_email", String(320), nullable=True),
    Column("statement_descriptor", String(22), nullable=True),
    Column("statement_descriptor_suffix", String(22), nullable=True),
    Column("setup_future_usage", String(16), nullable=True),
    Column("return_url", Text, nullable=True),
    Column("latest_charge", String(40), nullable=True),
    Column("client_secret", String(80), nullable=False),
    Column("pending_op", String(16), nullable=True),  # confirm | capture | void while a processor call is in flight
    Column("processor", String(40), nullable=True),
    Column("processor_reference", String(128), nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint(
        "amount_refunded >= 0 AND amount_refund_pending >= 0 "
        "AND amount_refunded + amount_refund_pending <= amount_received",
        name="refunds_within_received",
    ),
    CheckConstraint("amount_received <= amount", name="received_within_amount"),
    Index("ix_payment_intents_list", "merchant_id", "livemode", "created", "id"),
)

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("id", String(40), primary_key=True),  # exposed as the Stripe charge id (ch_…)
    Column("intent_id", String(40), ForeignKey("payment_intents.id"), nullable=False, index=True),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("processor", String(40), nullable=False),
    Column("processor_account", String(64), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("capture", Boolean, nullable=False),
    # pending | requires_action | authorized | captured | voided | failed | unknown
    Column("status", String(20), nullable=False),
    Column("amount_captured", BigInteger, nullable=False, default=0),
    Column("payment_method", String(64), nullable=True),
    Column("decline_code", String(64), nullable=True),
    Column("failure_code", String(64), nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("processor_reference", String(128), nullable=True),
    Column("next_sync_at", BigInteger, nullable=True),  # status sync schedule for unknown outcomes
    Column("sync_attempts", Integer, nullable=False, default=0),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    _work_queue("ix_payment_attempts_sync", "next_sync_at IS NOT NULL", "next_sync_at"),  # the status-sync scan
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("payment_intent", String(40), ForeignKey("payment_intents.id"), nullable=False, index=True),
    Column("charge", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed | canceled
    Column("reason", String(40), nullable=True),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("failure_reason", String(64), nullable=True),
    Column("processor_reference", String(128), nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_refunds_list", "merchant_id", "livemode", "created", "id"),
    _work_queue("ix_refunds_pending", "status = 'pending'", "updated"),  # the refund-resend scan
)

ledger_journals = Table(
    "ledger_journals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("kind", String(32), nullable=False),  # capture | refund | …
    Column("payment_intent", String(40), nullable=True, index=True),
    Column("ref_id", String(40), nullable=False),  # the attempt or refund that moved the money
    Column("currency", String(3), nullable=False),
    Column("created", BigInteger, nullable=False),
    UniqueConstraint("kind", "ref_id", name="uq_ledger_journals_kind_ref"),  # one journal per money movement
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("journal_id", String(40), ForeignKey("ledger_journals.id"), nullable=False, index=True),
    Column("account", String(120), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),  # debit positive, credit negative; a journal sums to zero
    Column("currency", String(3), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("type", String(80), nullable=False),
    Column("object_id", String(40), nullable=True),
    Column("data", Text, nullable=False),  # JSON: {"object": …, "previous_attributes": …}
    Column("request_id", String(64), nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    Column("created", BigInteger, nullable=False),
    # No longer written (migration 0007: the relay's queue is event_outbox); kept for processes of the previous
    # release during a rolling deploy, to be dropped in a later one.
    Column("relayed_at", BigInteger, nullable=True),
    Index("ix_events_list", "merchant_id", "livemode", "created", "id"),
)

# The outbox relay's queue: one row per event not yet handed on, written with the event, deleted by the relay
# (migration 0007). Ordered by its key, so the relay takes the oldest first; narrow, so the queue costs little.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("created", BigInteger, nullable=False),
    Column("event_id", String(40), nullable=False),
    PrimaryKeyConstraint("created", "event_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("merchant_id", String(40), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("key", String(255), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(255), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # started | finished
    Column("locked_until", BigInteger, nullable=False),
    Column("recovery", Text, nullable=True),  # JSON checkpoint written before a processor call
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created", BigInteger, nullable=False, index=True),
    UniqueConstraint("merchant_id", "livemode", "key", name="uq_idempotency_keys_scope"),
)

import paygate.events.tables, paygate.hooks.tables  # noqa: E401, E402, F401, I001  (webhook tables join the metadata)
from paygate.vault import tables as _vault_tables  # noqa: E402,F401  (vault + customer tables on this metadata)
from paygate.processors import tables as _processor_tables  # noqa: E402,F401  (processor accounts + routing rules)
from paygate.checkout import tables as _checkout_tables  # noqa: E402,F401  (checkout sessions, line items, settings)
