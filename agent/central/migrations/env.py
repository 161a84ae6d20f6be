"""Alembic environment for the console database (run through agent/central/store.py).

The caller passes an open SQLAlchemy connection in `config.attributes["connection"]`,
so migrations run inside the same engine and settings the console uses.
"""

from __future__ import annotations

from alembic import context

from agent.central.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through agent.central.store.migrate()")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
