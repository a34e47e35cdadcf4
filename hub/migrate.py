"""The hub's schema version: create, check and upgrade it with Alembic (``hub/migrations``).

* an empty database is created at the newest revision (any command may do that);
* a database made before migrations existed (tables, no ``alembic_version``) is the baseline
  revision ``0001``: :func:`upgrade` stamps it, then upgrades it;
* a database at an older revision is upgraded by ``station-hub migrate`` only: ``serve`` and the
  admin commands refuse it with a clear message (:class:`SchemaOutOfDate`) rather than changing a
  production schema as a side effect.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from hub.db import IMMEDIATE
from hub.errors import HubError

BASELINE = "0001"
_LOCK_KEY = 0x7461_6275_6C61  # "tabula": the advisory lock of schema upgrades
_SCRIPTS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(HubError):
    """The database's schema is older than this hub."""

    status = 503
    code = "schema_out_of_date"


class MigrationRefused(HubError):
    """The data cannot take a new revision's constraints; the upgrade changed nothing."""

    code = "migration_refused"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None
    return rev


def _revision(conn: Connection) -> str | None:
    rev = MigrationContext.configure(conn).get_current_revision()
    if rev is None and inspect(conn).has_table("certificates"):
        return BASELINE
    return rev


def current(engine: Engine) -> str | None:
    """The database's revision: None when empty, ``0001`` for a pre-migration hub's tables."""
    with engine.connect() as conn:
        return _revision(conn)


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (before, after).

    Several hub processes may start together on an empty database: the upgrade runs under a lock
    (PostgreSQL: an advisory lock; SQLite: ``BEGIN IMMEDIATE``) and reads the revision under it.
    """
    with engine.execution_options(**{IMMEDIATE: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        before = _revision(conn)
        cfg = _config(conn)
        if before == BASELINE and MigrationContext.configure(conn).get_current_revision() is None:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, "head")
    return before, head()


def ensure(engine: Engine) -> None:
    """Create an empty database; refuse one whose schema is older (or newer) than this hub."""
    rev = current(engine)
    if rev is None:
        upgrade(engine)
        return
    want = head()
    if rev != want:
        raise SchemaOutOfDate(
            f"the database schema is at revision {rev}, this hub needs {want}: "
            "upgrade it with station-hub migrate",
            hint="back the database up, then run: station-hub migrate --db URL",
        )
