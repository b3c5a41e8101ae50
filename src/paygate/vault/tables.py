"""Tables of the card vault and of customers, on the shared :data:`paygate.db.tables.metadata`.

``paygate.db.tables`` imports this module at its bottom so Alembic and the migration check see these tables;
the schema itself is created by migration ``0002_vault``.

* ``payment_methods`` -- one vaulted card per ``pm_…`` token. Display data (brand, last4, expiry, fingerprint,
  country) is stored in clear; the PAN only inside ``sealed`` (:meth:`paygate.vault.crypto.SealedCard.to_bytes`,
  AES-256-GCM bound to the token and merchant). ``kek_id``/``kek_version`` repeat what ``sealed`` says so
  rotation can find old records; opening refuses a row where they disagree. There is no CVC column, ever.
* ``customers`` -- Stripe Customers (soft-deleted: ``deleted`` true keeps the row for payment history).
* ``vault_audit`` -- append-only, hash-chained detokenization records (:mod:`paygate.vault.audit`).
* ``vault_head`` -- one row (``id`` 1) holding the chain's last ``(seq, hash)``, updated in the same
  transaction as each append; the row lock serialises appenders and a shorter chain than the head shows a
  deleted tail.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from paygate.db.tables import BigId, metadata

__all__ = ["customers", "payment_methods", "vault_audit", "vault_head"]

customers = Table(
    "customers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("email", String(512), nullable=True),
    Column("name", String(256), nullable=True),
    Column("description", Text, nullable=True),
    Column("phone", String(64), nullable=True),
    Column("address", Text, nullable=True),  # JSON object or null
    Column("metadata", Text, nullable=False, default="{}"),
    Column("default_payment_method", String(40), nullable=True),  # invoice_settings[default_payment_method]
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Index("ix_customers_list", "merchant_id", "livemode", "created", "id"),
)

payment_methods = Table(
    "payment_methods",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), ForeignKey("merchants.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("type", String(16), nullable=False),
    Column("customer", String(40), ForeignKey("customers.id"), nullable=True),
    Column("brand", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("fingerprint", String(32), nullable=False),
    Column("country", String(2), nullable=True),
    Column("funding", String(16), nullable=False),
    Column("billing_details", Text, nullable=False, default="{}"),
    Column("metadata", Text, nullable=False, default="{}"),
    Column("sealed", LargeBinary, nullable=False),
    Column("kek_id", String(80), nullable=False),
    Column("kek_version", Integer, nullable=False),
    # the PaymentIntent that used this card while it was attached to no customer (single use; see
    # paygate.vault.usage), and when it was detached from a customer (never usable again)
    Column("consumed_by", String(40), nullable=True),
    Column("detached_at", BigInteger, nullable=True),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Index("ix_payment_methods_list", "merchant_id", "livemode", "created", "id"),
    Index("ix_payment_methods_customer", "customer", "created"),
    Index("ix_payment_methods_kek", "kek_version"),
)

vault_audit = Table(
    "vault_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False, unique=True),
    Column("at", String(32), nullable=False),  # canonical UTC time, exactly as hashed
    Column("actor", String(200), nullable=False),
    Column("token", String(40), nullable=False),
    Column("purpose", String(120), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

vault_head = Table(
    "vault_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
