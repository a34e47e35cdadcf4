"""What a lot report's PDF says, block by block (the certificate's page model, :mod:`certs.page`).

:mod:`certs.lotpdf` lays these blocks out and checks a PDF's page against them, so what is drawn and
what is compared come from one place.  The page speaks its language throughout (:data:`certs.i18n.LOT_LABELS`):
vocabularies (kinds, outcomes, results) are translated, dates are written as people write them, and
masses use the language's decimal mark (``130,2 kg`` / ``130.2 kg``).  What stays as signed: names
(organisation, donor, makes, models, WEEE channels), identifiers, and the factor table's name and
citations (a study's title is a proper noun).
"""

from __future__ import annotations

from datetime import date

from certs.i18n import lot_labels
from certs.impact import Impact
from certs.lotreport import LotDevice, LotDrive, LotReport
from certs.page import Block, Edition, Grid, Head, Keep, Space, Table, Text, cell

#: The edition of the lot report's page (its wording is part of the format).
LOT_EDITION = 1


def kg(grams: int, lang: str) -> str:
    """``130200`` -> ``130.2 kg`` (``130,2 kg`` in French): exact, without trailing zeros."""
    whole, rest = divmod(grams, 1000)
    text = str(whole) if rest == 0 else f"{whole}.{rest:03d}".rstrip("0")
    return (text.replace(".", ",") if lang == "fr" else text) + " kg"


def day(value: str | None, lang: str) -> str | None:
    """A ``YYYY-MM-DD`` date as people write it (``14/03/2026`` in French)."""
    if value is None:
        return None
    d = date.fromisoformat(value)
    return d.strftime("%d/%m/%Y") if lang == "fr" else value


class _Words:
    """The page's labels and how it writes the report's values, in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.L = lot_labels(lang)
        self.edition = Edition(2, lang)

    def kind(self, kind: str) -> str:
        return self.L["drive_only" if kind == "drive" else kind]

    def when(self, ts: str | None) -> str:
        return cell(self.edition.when(ts))

    def outcome(self, d: LotDevice) -> str:
        o = d.outcome
        if o is None:
            return self.L["none"]
        what = self.L[o.kind]
        if o.kind == "reused":
            what += f" {self.L['to']} {self.L['b_' + o.detail]}"
        elif o.detail:
            what += f" {self.L['via']} {o.detail}" if o.kind == "recycled" else f" ({o.detail})"
        return f"{what}, {day(o.date, self.lang)}"


def _grid(rows: list[tuple[str, str, object]]) -> Grid:
    return Grid(tuple((label, cell(value)) for _, label, value in rows), tuple(f for f, _, _ in rows))


def _head(r: LotReport, W: _Words) -> list[Block]:
    L = W.L
    head = Head(r.organisation.name, L["title"], L["report_id"].format(id=r.report_id), r.donor_page or "")
    lot = r.lot
    donor = f"{lot.donor_name} ({L[lot.donor_kind]})"
    return [
        head,
        Space(2),
        Text(L["lot"], "h2"),
        _grid(
            [
                ("lot.reference", L["reference"], lot.reference),
                ("lot.donor", L["donor"], donor),
                ("lot.received", L["received"], day(lot.received, W.lang)),
                ("lot.closed", L["closed"], day(lot.closed, W.lang) or L["open"]),
                ("organisation", L["organisation"], r.organisation.name),
                ("issued_at", L["issued"], W.when(r.issued_at)),
                ("donor_page", L["donor_page"], r.donor_page),
            ]
        ),
    ]


def _summary(r: LotReport, W: _Words) -> list[Block]:
    L = W.L
    c = r.counts()
    outcomes = " / ".join(str(c[k]) for k in ("reused", "sold", "recycled", "destroyed"))
    return [
        Text(L["summary"], "h2"),
        _grid(
            [
                ("counts.received", L["devices_received"], c["received"]),
                ("counts.diagnosed", L["diagnosed"], c["diagnosed"]),
                ("counts.data_cleared", L["data_cleared"], c["data_cleared"]),
                ("counts.outcomes", L["outcomes"], outcomes),
                ("counts.flagged_drives", L["flagged"], c["flagged_drives"]),
            ]
        ),
    ]


def _impact_rows(impact: Impact, W: _Words) -> tuple[tuple[str, ...], ...]:
    rows = []
    for kind, line in impact.by_kind.items():
        star = {f: "*" if f"{kind}.{f}" in impact.placeholders else "" for f in ("co2e", "waste")}
        per = f"{kg(line.factor_co2e_g, W.lang)}{star['co2e']} / {kg(line.factor_waste_g, W.lang)}{star['waste']}"
        total = f"{kg(line.co2e_g, W.lang)} / {kg(line.waste_g, W.lang)}"
        rows.append((W.kind(kind), str(line.devices), per, total))
    return tuple(rows)


def _impact(r: LotReport, W: _Words) -> list[Block]:
    L = W.L
    impact = r.impact.impact
    out: list[Block] = [
        Text(L["impact"], "h2"),
        _grid(
            [
                ("impact.devices", L["impact_devices"], impact.devices),
                ("impact.co2e", L["co2e"], kg(impact.co2e_g, W.lang) + " CO2e"),
                ("impact.waste", L["waste"], kg(impact.waste_g, W.lang)),
            ]
        ),
    ]
    if impact.by_kind:
        head = (L["kind"], L["count"], L["per_device"], L["total"])
        out.append(Table(head, _impact_rows(impact, W), (40, 25, 60, 55), "impact.by_kind"))
    else:
        out.append(Text(L["no_reuse"], "body", "impact.by_kind"))
    out.append(Text(L["impact_note"], "small", "impact.note"))
    out.append(_grid([("impact.table", L["table"], r.impact.table)]))
    out.append(Text(L["sources"], "label", "impact.sources"))
    out += [Text(c, "small", f"impact.citations[{i + 1}]") for i, c in enumerate(r.impact.citations)]
    return out


def _device_row(d: LotDevice, W: _Words) -> tuple[str, ...]:
    L = W.L
    ident = ", ".join(x for x in (d.make, d.model) if x) or L["none"]
    if d.serial:
        ident += f", {d.serial}"
    verdict = L[d.verdict] if d.verdict else L["none"]
    return (d.asset, W.kind(d.kind), ident, verdict, L["yes"] if d.data_cleared else L["no"], W.outcome(d))


def _devices(r: LotReport, W: _Words) -> list[Block]:
    L = W.L
    head = (L["asset"], L["kind"], L["device"], L["verdict"], L["cleared"], L["outcome"])
    rows = tuple(_device_row(d, W) for d in r.devices)
    return [Text(L["devices"], "h2"), Table(head, rows, (25, 25, 45, 20, 17, 48), "devices")]


def _drive_rows(d: LotDevice, drive: LotDrive | None, W: _Words) -> list[tuple[str, ...]]:
    L = W.L
    if drive is None:
        return [(d.asset, L["no_drive"], L["none"], L["none"], L["none"], L["no_proof"])]
    ident = " ".join(x for x in (drive.model, drive.serial) if x) or L["none"]
    rows: list[tuple[str, ...]] = []
    if drive.certificate_id is not None:
        level = {"clear": "Clear", "purge": "Purge"}.get(cell(drive.level), L["none"])
        result = L[drive.result] if drive.result else L["none"]
        rows.append((d.asset, ident, drive.certificate_id, level, W.when(drive.date), result))
    if drive.destruction_id is not None:
        rows.append(
            (
                d.asset,
                ident,
                drive.destruction_id,
                "Destroy",
                W.when(drive.destruction_date),
                L["destroyed_record"],
            )
        )
    if not rows:
        rows.append((d.asset, ident, L["none"], L["none"], L["none"], L["no_proof"]))
    return rows


def _drives(r: LotReport, W: _Words) -> list[Block]:
    L = W.L
    head = (L["asset"], L["drive"], L["record"], L["level"], L["date"], L["result"])
    rows: list[tuple[str, ...]] = []
    for d in r.devices:
        for drive in d.drives or (None,):
            rows += _drive_rows(d, drive, W)
    return [Text(L["drives"], "h2"), Table(head, tuple(rows), (22, 40, 52, 14, 28, 24), "drives")]


def lot_blocks(report: LotReport, lang: str) -> list[Block]:
    """Every block of the lot report's page(s), in drawing order."""
    W = _Words(lang)
    return [
        *_head(report, W),
        *_summary(report, W),
        Keep(tuple(_impact(report, W))),
        *_devices(report, W),
        *_drives(report, W),
        Space(3),
        Text(W.L["signed_note"], "small", "note"),
    ]


def lot_metadata(report: LotReport, lang: str) -> dict[str, str]:
    """The document information of the lot report's PDF (compared with the report on verification)."""
    return {
        "/Title": f"{lot_labels(lang)['title']} {report.lot.reference}",
        "/Subject": f"{report.organisation.name} - {report.lot.donor_name}",
        "/Keywords": f"tabula lot-report {report.report_id}",
        "/TabulaLotReportId": report.report_id,
    }
