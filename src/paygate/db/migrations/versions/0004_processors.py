"""processor accounts and routing rules

Revision ID: 0004_processors
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_processors"
down_revision = "0001"
branch_labels = ("processors",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processor_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("sealed_credentials", sa.LargeBinary(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_processor_accounts_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processor_accounts")),
    )
    op.create_index(
        "ix_processor_accounts_merchant", "processor_accounts", ["merchant_id", "livemode", "priority"], unique=False
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("processors", sa.Text(), nullable=False),
        sa.Column("weights", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], name=op.f("fk_routing_rules_merchant_id_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_index("ix_routing_rules_merchant", "routing_rules", ["merchant_id", "livemode", "priority"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_routing_rules_merchant", table_name="routing_rules")
    op.drop_table("routing_rules")
    op.drop_index("ix_processor_accounts_merchant", table_name="processor_accounts")
    op.drop_table("processor_accounts")
