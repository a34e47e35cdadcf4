"""Alembic migrations of the hub's schema (run them with ``station-hub migrate``; see hub/migrate.py)."""
