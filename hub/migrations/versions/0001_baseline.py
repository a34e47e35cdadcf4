"""Baseline: the schema hub/db.py created (``create_all``) before migrations existed.

A database made by that version has these tables and no ``alembic_version``: ``station-hub migrate``
stamps it with this revision, then upgrades it.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kid", sa.String(64), nullable=False, unique=True),
        sa.Column("public_pem", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("station_id", sa.String(128), nullable=False, index=True),
        sa.Column("kid", sa.String(64), nullable=False, unique=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("endorsement", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.String(36), primary_key=True),
        sa.Column("station_pk", sa.Integer, sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("station_kid", sa.String(64), nullable=False),
        sa.Column("station_name", sa.String(128), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("previous", sa.String(64), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("level_achieved", sa.String(16), nullable=False),
        sa.Column("serial", sa.String(200), nullable=True),
        sa.Column("wwn", sa.String(200), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("manufacturer", sa.String(200), nullable=True),
        sa.Column("asset_number", sa.String(200), nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("trust", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.UniqueConstraint("station_kid", "sequence", name="uq_certificates_chain_place"),
    )
    op.create_index("ix_certificates_serial", "certificates", ["serial"])
    op.create_index("ix_certificates_asset_number", "certificates", ["asset_number"])
    op.create_index("ix_certificates_station", "certificates", ["station_pk", "sequence"])
    op.create_table(
        "reports",
        sa.Column("report_id", sa.String(64), primary_key=True),
        sa.Column("station_pk", sa.Integer, sa.ForeignKey("stations.id"), nullable=False, index=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("reports", "certificates", "stations", "organisations"):
        op.drop_table(table)
