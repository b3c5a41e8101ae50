"""checkout: sessions, line items, merchant checkout settings

Revision ID: 0005_checkout
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_checkout"
down_revision = "0001"
branch_labels = ("checkout",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_status", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_subtotal", sa.BigInteger(), nullable=False),
        sa.Column("amount_total", sa.BigInteger(), nullable=False),
        sa.Column("payment_intent", sa.String(length=40), nullable=False),
        sa.Column("success_url", sa.Text(), nullable=False),
        sa.Column("cancel_url", sa.Text(), nullable=True),
        sa.Column("customer", sa.String(length=40), nullable=True),
        sa.Column("customer_email", sa.String(length=512), nullable=True),
        sa.Column("customer_details", sa.Text(), nullable=True),
        sa.Column("client_reference_id", sa.String(length=200), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("pay_claim", sa.String(length=40), nullable=True),
        sa.Column("pay_claim_until", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("expired_at", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("status in ('open', 'complete', 'expired')", name=op.f("ck_checkout_sessions_status")),
        sa.CheckConstraint("payment_status in ('unpaid', 'paid')", name=op.f("ck_checkout_sessions_payment_status")),
        sa.CheckConstraint("amount_total > 0 AND amount_subtotal >= 0", name=op.f("ck_checkout_sessions_amounts")),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_checkout_sessions_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["payment_intent"], ["payment_intents.id"], name=op.f("fk_checkout_sessions_payment_intent_payment_intents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_sessions")),
    )
    op.create_index(
        "ix_checkout_sessions_list", "checkout_sessions", ["merchant_id", "livemode", "created", "id"], unique=False
    )
    op.create_index("ix_checkout_sessions_due", "checkout_sessions", ["status", "expires_at"], unique=False)
    op.create_index("ix_checkout_sessions_payment_intent", "checkout_sessions", ["payment_intent"], unique=False)
    op.create_table(
        "checkout_line_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("unit_amount", sa.BigInteger(), nullable=False),
        sa.Column("amount_total", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.String(length=40), nullable=False),
        sa.CheckConstraint(
            "quantity > 0 AND unit_amount >= 0 AND amount_total = unit_amount * quantity",
            name=op.f("ck_checkout_line_items_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["checkout_sessions.id"], name=op.f("fk_checkout_line_items_session_id_checkout_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkout_line_items")),
    )
    op.create_index("ix_checkout_line_items_session", "checkout_line_items", ["session_id", "position"], unique=False)
    op.create_table(
        "checkout_settings",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("default_expires_in", sa.Integer(), nullable=False),
        sa.Column("allowed_frame_ancestors", sa.Text(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "default_expires_in >= 300 AND default_expires_in <= 86400",
            name=op.f("ck_checkout_settings_default_expires_in"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_checkout_settings_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("merchant_id", "livemode", name=op.f("pk_checkout_settings")),
    )


def downgrade() -> None:
    op.drop_table("checkout_settings")
    op.drop_index("ix_checkout_line_items_session", table_name="checkout_line_items")
    op.drop_table("checkout_line_items")
    op.drop_index("ix_checkout_sessions_payment_intent", table_name="checkout_sessions")
    op.drop_index("ix_checkout_sessions_due", table_name="checkout_sessions")
    op.drop_index("ix_checkout_sessions_list", table_name="checkout_sessions")
    op.drop_table("checkout_sessions")
