"""Tables for processor accounts and routing rules (shares :data:`paygate.db.tables.metadata`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from paygate.db.tables import metadata

__all__ = ["processor_accounts", "routing_rules"]

processor_accounts = Table(
    "processor_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("connector", String(32), nullable=False),  # simulator | stripe | adyen | sandbox
    Column("base_url", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("priority", Integer, nullable=False, default=100),  # lower first when no rule matches
    Column("enabled", Boolean, nullable=False, default=True),
    # Credentials (api key, webhook secret, merchant account) as one envelope-encrypted JSON document bound to
    # this account id; never returned by the API.
    Column("sealed_credentials", LargeBinary, nullable=True),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("created", BigInteger, nullable=False),
    Index("ix_processor_accounts_merchant", "merchant_id", "livemode", "priority"),
)

routing_rules = Table(
    "routing_rules",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("priority", Integer, nullable=False, default=100),  # rules are evaluated in ascending priority
    Column("conditions", Text, nullable=False, default="{}"),  # JSON: currency, card_brand, country, amount range
    Column("processors", Text, nullable=False),  # JSON: ordered list of processor account ids (failover order)
    Column("weights", Text, nullable=True),  # JSON: {account id: weight} volume split for the first choice
    Column("description", Text, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created", BigInteger, nullable=False),
    Index("ix_routing_rules_merchant", "merchant_id", "livemode", "priority"),
)
