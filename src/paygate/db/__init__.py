"""Database access: table definitions, engine and transaction helpers for SQLite and PostgreSQL, migrations."""
