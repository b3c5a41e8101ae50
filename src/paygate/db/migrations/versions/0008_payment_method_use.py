"""payment method use: which PaymentIntent used an unattached card, and when a card was detached

Stripe's rule, which merchants' integrations rely on: a PaymentMethod not attached to a customer is good for one
PaymentIntent (re-confirming that same intent after a decline is allowed); one detached from its customer may not
be used again; only an attached one is reusable, by its own customer's intents. ``consumed_by`` records the intent
that used an unattached card (claimed by a conditional UPDATE in the confirming transaction, so two concurrent
confirmations cannot both have it); ``detached_at`` records a detachment. Both are nullable: existing rows are
neither used nor detached as far as the vault knew, and processes of the previous release ignore the columns.

Revision ID: 0008_payment_method_use
Revises: 0002_vault
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_payment_method_use"
down_revision = "0002_vault"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_methods") as batch_op:
        batch_op.add_column(sa.Column("consumed_by", sa.String(40), nullable=True))
        batch_op.add_column(sa.Column("detached_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_methods") as batch_op:
        batch_op.drop_column("detached_at")
        batch_op.drop_column("consumed_by")
