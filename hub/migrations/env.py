"""Alembic environment: :mod:`hub.migrate` hands over an open connection; nothing is read from an ini."""

from __future__ import annotations

from alembic import context

from hub.db import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
