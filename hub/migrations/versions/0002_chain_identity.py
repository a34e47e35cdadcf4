"""Constraint-backed chains, 64-bit sequences, TEXT facts, revocation times, token expiry, redaction.

* ``certificates``: ``sequence`` becomes 64-bit and the free-text facts ``TEXT`` (PostgreSQL; SQLite
  neither bounds ``VARCHAR`` nor narrows ``INTEGER``, which is already 64-bit there); a unique index
  on ``(station_kid, previous)`` forbids forks; an index serves lookups by station id;
  ``redacted_at`` records a removal of personal data.
* ``stations``: ``revoked`` (a flag) becomes ``revoked_at`` + ``revocation_reason``; tokens get an
  optional expiry; among active stations ``(organisation, station_id)`` is unique.

A database holding a forked chain or two active keys under one station id cannot take the new
constraints: the upgrade stops, names them, and changes nothing (the administrator decides).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.migrate import MigrationRefused

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = ("station_name", "serial", "wwn", "model", "manufacturer", "asset_number")
_LEGACY_REASON = "revoked before the hub recorded revocation times (time of the schema upgrade)"


def _refuse_conflicts(bind: sa.engine.Connection) -> None:
    forks = bind.execute(
        sa.text(
            "SELECT station_kid, previous, COUNT(*) FROM certificates WHERE previous IS NOT NULL "
            "GROUP BY station_kid, previous HAVING COUNT(*) > 1"
        )
    ).all()
    twins = bind.execute(
        sa.text(
            "SELECT organisation_id, station_id, COUNT(*) FROM stations WHERE NOT revoked "
            "GROUP BY organisation_id, station_id HAVING COUNT(*) > 1"
        )
    ).all()
    problems = [f"station key {k[:16]}: {n} certificates follow {p[:16]} (a fork)" for k, p, n in forks]
    problems += [
        f"organisation #{o}: {n} active keys are enrolled as station {s!r} (revoke all but one)"
        for o, s, n in twins
    ]
    if problems:
        raise MigrationRefused("the data breaks the new constraints: " + "; ".join(problems))


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_conflicts(bind)
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.alter_column("organisations", "name", type_=sa.Text)
        op.alter_column("certificates", "sequence", type_=sa.BigInteger)
        for column in _TEXT_COLUMNS:
            op.alter_column("certificates", column, type_=sa.Text)
    op.add_column("certificates", sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("uq_certificates_chain_link", "certificates", ["station_kid", "previous"], unique=True)
    op.create_index("ix_certificates_station_name", "certificates", ["station_name", "sequence"])

    op.add_column("stations", sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("stations", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("stations", sa.Column("revocation_reason", sa.Text, nullable=True))
    bind.execute(
        sa.text("UPDATE stations SET revoked_at = CURRENT_TIMESTAMP, revocation_reason = :r WHERE revoked"),
        {"r": _LEGACY_REASON},
    )
    # Plain ALTER TABLE ... DROP COLUMN: PostgreSQL and SQLite >= 3.35 both have it, and no table
    # copy is needed (a copy would trip SQLite's foreign keys from certificates).
    bind.execute(sa.text("ALTER TABLE stations DROP COLUMN revoked"))
    where = sa.text("revoked_at IS NULL")
    op.create_index(
        "uq_stations_active_id",
        "stations",
        ["organisation_id", "station_id"],
        unique=True,
        sqlite_where=where,
        postgresql_where=where,
    )


def downgrade() -> None:
    raise NotImplementedError("the hub's schema is not downgraded: restore a backup instead")
