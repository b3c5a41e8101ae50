"""Tables of Checkout Sessions, their line items, and merchants' checkout settings.

They live on the shared :data:`paygate.db.tables.metadata` (``paygate.db.tables`` imports this module at its
bottom, so Alembic and the schema tests see them). Migration: ``0005_checkout``.

* ``checkout_sessions`` -- one row per session. ``payment_intent`` is the intent the session owns (created with
  it). ``pay_claim`` / ``pay_claim_until`` are the in-flight claim of a card submit: set by one conditional
  UPDATE (so two concurrent submits cannot both pay), cleared when the submit ends, and a lease that lapses by
  itself if the process died. While it is held, neither the expiry job nor an API ``expire`` touches the
  session. ``customer_details`` is JSON (what the customer entered on the page; never card data).
* ``checkout_line_items`` -- the priced lines of a session, in ``position`` order. Amounts are minor units of
  the session's currency.
* ``checkout_settings`` -- per merchant and mode: the default lifetime of a session and the origins allowed to
  embed the hosted page (JSON list; empty = ``frame-ancestors 'none'``).
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
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from paygate.db.tables import metadata

__all__ = ["checkout_line_items", "checkout_sessions", "checkout_settings"]

checkout_sessions = Table(
    "checkout_sessions",
    metadata,
    Column("id", String(80), primary_key=True),  # cs_test_… / cs_live_… (>= 128 random bits: the page capability)
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("mode", String(16), nullable=False),  # payment
    Column("status", String(16), nullable=False),  # open | complete | expired
    Column("payment_status", String(24), nullable=False),  # unpaid | paid
    Column("currency", String(3), nullable=False),
    Column("amount_subtotal", BigInteger, nullable=False),
    Column("amount_total", BigInteger, nullable=False),
    Column("payment_intent", String(40), ForeignKey("payment_intents.id"), nullable=False),
    Column("success_url", Text, nullable=False),
    Column("cancel_url", Text, nullable=True),
    Column("customer", String(40), nullable=True),
    Column("customer_email", String(512), nullable=True),
    Column("customer_details", Text, nullable=True),
    Column("client_reference_id", String(200), nullable=True),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("locale", String(16), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("pay_claim", String(40), nullable=True),
    Column("pay_claim_until", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("expired_at", BigInteger, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    CheckConstraint("status in ('open', 'complete', 'expired')", name="status"),
    CheckConstraint("payment_status in ('unpaid', 'paid')", name="payment_status"),
    CheckConstraint("amount_total > 0 AND amount_subtotal >= 0", name="amounts"),
    Index("ix_checkout_sessions_list", "merchant_id", "livemode", "created", "id"),
    Index("ix_checkout_sessions_due", "status", "expires_at"),
    Index("ix_checkout_sessions_payment_intent", "payment_intent"),
)

checkout_line_items = Table(
    "checkout_line_items",
    metadata,
    Column("id", String(40), primary_key=True),  # li_…
    Column("session_id", String(80), ForeignKey("checkout_sessions.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("quantity", BigInteger, nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("amount_total", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price_id", String(40), nullable=False),
    Column("product_id", String(40), nullable=False),
    CheckConstraint("quantity > 0 AND unit_amount >= 0 AND amount_total = unit_amount * quantity", name="amounts"),
    Index("ix_checkout_line_items_session", "session_id", "position"),
)

checkout_settings = Table(
    "checkout_settings",
    metadata,
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("default_expires_in", Integer, nullable=False),
    Column("allowed_frame_ancestors", Text, nullable=False, default="[]"),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("merchant_id", "livemode"),
    CheckConstraint("default_expires_in >= 300 AND default_expires_in <= 86400", name="default_expires_in"),
)
