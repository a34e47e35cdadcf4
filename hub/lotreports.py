"""Lot reports from the hub: a :class:`certs.lotreport.LotReport` built from a lot's progress, signed
with the organisation key (``sign_lot_report``) and rendered as a PDF (``render_lot_report``).

``station-hub lot-report REF --org KID --org-keys DIR --lang fr --out DIR`` writes
``<reference>.lot-report.json`` (the signed report) and ``.pdf``.  The hub does not hold the
organisation's private key: whoever runs the command does (``--org-keys``, the directory of
``station keys init --org``).  The donor page's URL (the report's QR code) is given with
``--donor-url`` (checked against the link the lot holds) or minted with ``--new-donor-link BASE``
(which replaces the previous link).

Each drive lists the newest verified certificate of it, else its newest failure report, and its
destruction record when it has one; the report model checks that a device is "data cleared" exactly
when every drive is proven, so the report cannot claim more than the hub's records show.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select

from certs.keys import SigningKey, format_time
from certs.lotpdf import render_lot_report
from certs.lotreport import (
    Lot,
    LotDevice,
    LotDrive,
    LotImpact,
    LotReport,
    Organisation,
    Outcome,
    new_report_id,
    sign_lot_report,
)
from hub import lots
from hub.admin import token_hash
from hub.db import Organisation as OrgRow
from hub.errors import AdminError
from hub.impact import impact_line
from hub.lotfacts import DeviceState, DriveState, RecordFact
from hub.lots import LotView, iso

_DONOR_URL = re.compile(r"^https?://[^\s]+/donor/([A-Za-z0-9_-]{20,100})$")


def _newest(
    records: Sequence[RecordFact], kinds: tuple[str, ...], success: bool | None = None
) -> RecordFact | None:
    pool = [r for r in records if r.kind in kinds and (success is None or r.success == success)]
    return max(pool, key=lambda r: r.issued_at) if pool else None


def lot_drive(d: DriveState) -> LotDrive:
    cert = _newest(d.records, ("certificate",), True) or _newest(d.records, ("certificate", "failure_report"))
    gone = _newest(d.records, ("destruction",))
    signed = cert or gone  # the drive as its signed record names it (what station verify compares)
    return LotDrive(
        serial=signed.serial if signed else d.serial,
        model=signed.model if signed else d.model,
        certificate_id=cert.record_id if cert else None,
        certificate_sha256=cert.sha256 if cert else None,
        level=cast(Any, cert.level) if cert else None,
        date=cert.issued_at if cert else None,
        result=cast(Any, cert.result) if cert else None,
        destruction_id=gone.record_id if gone else None,
        destruction_sha256=gone.sha256 if gone else None,
        destruction_date=gone.issued_at if gone else None,
    )


def lot_device(s: DeviceState) -> LotDevice:
    o = s.outcome
    drives = tuple(lot_drive(d) for d in s.drives)
    return LotDevice(
        asset=s.facts.asset_number,
        kind=cast(Any, s.facts.kind),
        make=s.make,
        model=s.model,
        serial=s.serial,
        verdict=cast(Any, s.verdict),
        drives=drives,
        data_cleared=s.data_cleared,
        outcome=Outcome(cast(Any, o.outcome), o.detail, o.at[:10]) if o is not None and o.outcome else None,
    )


@dataclass
class HasFactors:
    impact_factors: Path | None


def build_report(
    view: LotView,
    org: OrgRow,
    donor_page: str | None,
    impact_factors: Path | None,
    *,
    now: datetime | None = None,
) -> LotReport:
    lot = view.lot
    line = impact_line(HasFactors(impact_factors), view.counts.reused_by_kind)
    return LotReport(
        report_id=new_report_id(),
        issued_at=format_time(now or datetime.now(UTC)),
        organisation=Organisation(org.name, org.kid),
        lot=Lot(
            reference=lot.reference,
            donor_name=lot.donor_name,
            donor_kind=cast(Any, lot.donor_kind),
            received=lot.received_on,
            closed=(iso(lot.closed_at) or "")[:10] or None,
        ),
        devices=tuple(lot_device(s) for s in view.states),
        impact=LotImpact.of(line.impact, line.table, list(line.citations)),
        donor_page=donor_page,
    )


def check_donor_url(url: str, donor_token_sha256: str | None) -> str:
    """A donor page URL for the QR code: it must be the link the lot holds now."""
    m = _DONOR_URL.match(url.strip())
    if m is None:
        raise AdminError("--donor-url is the donor page's address: https://HUB/donor/TOKEN")
    if donor_token_sha256 is None or token_hash(m.group(1)) != donor_token_sha256:
        raise AdminError(
            "this donor link is not the lot's current one (withdrawn or replaced)",
            hint="give the current link, or mint one with --new-donor-link https://HUB",
        )
    return url.strip()


def write_report(report: LotReport, key: SigningKey, lang: str, out: Path) -> tuple[Path, Path]:
    """Sign and render ``report`` into ``out``: ``<ref>.lot-report.json`` and ``.pdf`` (never overwritten)."""
    signed = sign_lot_report(report, key)
    pdf = render_lot_report(report, lang, signed=signed)
    out.mkdir(parents=True, exist_ok=True)
    stem = report.lot.reference.replace("/", "_") + f".{report.report_id[:8]}.lot-report"
    paths = (out / f"{stem}.json", out / f"{stem}.pdf")
    for path, data in zip(paths, (signed, pdf), strict=True):
        with path.open("xb") as fh:
            fh.write(data)
    return paths


def generate(
    hub: Any,
    key: SigningKey,
    reference: str,
    *,
    lang: str,
    out: Path,
    donor_url: str | None = None,
    new_link_base: str | None = None,
) -> tuple[LotReport, Path, Path]:
    """The lot report of ``reference`` in the organisation of ``key``, signed and rendered into ``out``."""
    with hub.read_session() as s:
        org = s.scalar(select(OrgRow).where(OrgRow.kid == key.kid))
    if org is None:
        raise AdminError(
            f"organisation key {key.kid[:16]} is not registered on this hub (station-hub org add)"
        )
    lot = lots.find_lot(hub, org.id, ref=reference)
    if new_link_base is not None:
        lot, token = lots.mint_donor_token(hub, org.id, lot.id)
        donor_url = f"{new_link_base.rstrip('/')}/donor/{token}"
    page = check_donor_url(donor_url, lot.donor_token_sha256) if donor_url is not None else None
    report = build_report(lots.lot_view(hub, lot), org, page, hub.impact_factors)
    json_path, pdf_path = write_report(report, key, lang, out)
    return report, json_path, pdf_path
