"""Alembic environment: runs migrations over a synchronous connection passed in by paygate.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from paygate.db.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:  # plain `alembic` CLI use: sqlalchemy.url from the config
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
