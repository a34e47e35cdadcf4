"""Donation lots: lots, devices, device events, staff tokens; the lot of every signed record and the
asset number and lot of every diagnostics report.

* ``lots`` (per organisation, reference unique in it; the donor contact is personal data, erased by
  the retention rule), ``devices`` (asset number unique per organisation), ``device_events``;
* ``staff_tokens`` (roles ``staff`` and ``coordinator``, SHA-256 only, like station tokens);
* ``certificates.lot``: the lot reference a signed record carries (none did before: left NULL);
* ``reports.asset_number`` and ``reports.lot``, filled here from every stored report that carries
  them (:func:`hub.lotfacts.report_keys`), so reports received before lots existed link to devices.

Revision ID: 0004_lots
Revises: 0003_transparency_log
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.lotfacts import report_keys

revision = "0004_lots"
down_revision = "0003_transparency_log"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 1000


def _lot_tables() -> None:
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("donor_name", sa.Text, nullable=False),
        sa.Column("donor_kind", sa.String(16), nullable=False),
        sa.Column("received_on", sa.String(10), nullable=False),
        sa.Column("contact", sa.Text, nullable=True),
        sa.Column("contact_erased_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("donor_token_sha256", sa.String(64), nullable=True, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("organisation_id", "reference", name="uq_lots_reference"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("lot_id", sa.Integer, sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("asset_number", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("manufacturer", sa.Text, nullable=True),
        sa.Column("model", sa.Text, nullable=True),
        sa.Column("serial", sa.Text, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("organisation_id", "asset_number", name="uq_devices_asset"),
    )
    op.create_index("ix_devices_lot", "devices", ["lot_id"])
    op.create_table(
        "device_events",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_device_events_device", "device_events", ["device_id", "at"])
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("organisation_id", sa.Integer, sa.ForeignKey("organisations.id"), nullable=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", _TS, nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )


def _backfill_reports(bind: sa.engine.Connection) -> None:
    """Read the asset number and lot of every stored report (in batches: nothing held whole)."""
    reports = sa.table(
        "reports",
        sa.column("report_id", sa.String),
        sa.column("asset_number", sa.Text),
        sa.column("lot", sa.Text),
    )
    query = sa.text("SELECT report_id, body FROM reports ORDER BY report_id")
    rows = bind.execute(query.execution_options(stream_results=True, yield_per=_BATCH))
    for batch in rows.partitions(_BATCH):
        updates = []
        for report_id, body in batch:
            asset, lot = report_keys(bytes(body))
            if asset is not None or lot is not None:
                updates.append({"rid": report_id, "asset_number": asset, "lot": lot})
        if updates:
            bind.execute(
                reports.update().where(reports.c.report_id == sa.bindparam("rid")),
                updates,
            )


def upgrade() -> None:
    _lot_tables()
    op.add_column("certificates", sa.Column("lot", sa.Text, nullable=True))
    op.add_column("reports", sa.Column("asset_number", sa.Text, nullable=True))
    op.add_column("reports", sa.Column("lot", sa.Text, nullable=True))
    op.create_index("ix_reports_asset_number", "reports", ["asset_number"])
    _backfill_reports(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("the hub's schema is not downgraded: restore a backup instead")
