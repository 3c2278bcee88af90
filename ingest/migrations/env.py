"""Alembic environment: migrations run on the connection ``ingest.db.upgrade`` passes in."""

from __future__ import annotations

from alembic import context

from ingest.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ingest.db.upgrade (or `ingest db upgrade`)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
