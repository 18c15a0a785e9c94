"""Alembic environment: always given an open connection by payments.storage.migrate."""

from __future__ import annotations

from alembic import context

from payments.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not used
    raise RuntimeError("run migrations through payments.storage.migrate.upgrade_to_head")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
