"""What the PDF certificate's page says, section by section, as plain data.

:mod:`certs.pdf` lays these blocks out with reportlab; :mod:`certs.pdfcheck` reads a PDF's page back and
compares it with the blocks built from the *signed* record.  One source for both means the page check
compares exactly what is drawn, and every block names the record field it shows (``serial``,
``outcome``...), so a mismatch says which field differs.

**Editions.**  How a value is worded is part of the format: a PDF issued years ago must still be drawn
again identically.  Edition 1 (the first releases) shows the record's values as they are, in English,
with its own size units.  Edition 2 speaks the page's language throughout: reasons, notes and details
through :mod:`certs.phrases`, sizes with :mod:`host.units` (``1,50 Go`` / ``1.50 GB``), dates as people
write them (``01/03/2025 10:00:00`` / ``2025-03-01 10:00:00``, UTC), methods with their names, and the
drive health as labelled readings.  New PDFs are edition 2; :mod:`certs.pdfcheck` recognises both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certs.destruction import DestructionRecord
from certs.i18n import fact_label, labels, method_title
from certs.model import Certificate, HiddenArea
from certs.phrases import translate
from host import units

MAX_LISTED_RANGES = 20

Row = tuple[str, str]


@dataclass(frozen=True)
class Head:
    organisation: str
    title: str
    id_line: str
    qr: str  # the QR code's content


@dataclass(frozen=True)
class Banner:
    text: str
    colour: str  # "success", "unverified" or "failure"


@dataclass(frozen=True)
class Text:
    text: str
    style: str  # "h2", "body", "label" or "small"
    field: str = "text"


@dataclass(frozen=True)
class Grid:
    rows: tuple[Row, ...]
    fields: tuple[str, ...]  # the record field each row shows


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths_mm: tuple[float, ...]
    field: str


@dataclass(frozen=True)
class Keep:
    """Blocks kept on one page."""

    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Space:
    mm: float


Block = Head | Banner | Text | Grid | Table | Keep | Space

#: The edition new PDFs are drawn in.
EDITION = 2


@dataclass(frozen=True)
class Edition:
    """How one edition of the page words the record's values, in one language (see the module doc)."""

    number: int
    lang: str

    @property
    def L(self) -> dict[str, str]:
        return labels(self.lang, self.number)

    def size(self, n: int | None) -> str:
        if self.number < 2:
            return size_text(n)
        if n is None:
            return "?"
        exact = f"{n} {self.L['bytes_unit']}"
        return exact if n < 1000 else f"{units.human_size(n, self.lang, digits=2)} ({exact})"

    def when(self, ts: str | None) -> str | None:
        """A UTC timestamp of the record as people read it (edition 1: as recorded)."""
        if self.number < 2 or not ts:
            return ts
        try:
            t = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return ts
        return t.strftime("%d/%m/%Y %H:%M:%S" if self.lang == "fr" else "%Y-%m-%d %H:%M:%S")

    def say(self, text: str) -> str:
        """English prose of the record, in the page's language (edition 1: as recorded)."""
        return text if self.number < 2 else translate(text, self.lang)

    def method(self, name: str) -> str:
        if self.number < 2:
            return name
        title = method_title(name, self.lang)
        return name if title == name else f"{name} ({title})"


def editions() -> list[Edition]:
    """Every edition and language a PDF may have been drawn in, the current ones first."""
    return [Edition(n, lang) for n in (EDITION, 1) for lang in ("en", "fr")]


def qr_payload(cert_id: str, digest: str, url: str = "") -> str:
    """What the QR code holds: the certificate id, the signed record's hash, and the verification URL."""
    if url:
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}id={cert_id}&sha256={digest}"
    return f"tabula-cert:{cert_id};sha256={digest}"


def size_text(n: int | None) -> str:
    """A size as edition 1 writes it: ``67.11 MB (67108864 B)``."""
    if n is None:
        return "?"
    units_v1 = ["B", "kB", "MB", "GB", "TB", "PB"]
    v = float(n)
    i = 0
    while v >= 1000 and i < len(units_v1) - 1:
        v /= 1000
        i += 1
    return f"{n} B" if i == 0 else f"{v:.2f} {units_v1[i]} ({n} B)"


def cell(value: Any) -> str:
    """A grid value as drawn: empty values show as '-'."""
    return "-" if value is None or value == "" else str(value)


def _grid(rows: list[tuple[str, str, Any]]) -> Grid:
    """A grid from (field, label, value) triples."""
    return Grid(
        rows=tuple((label, cell(value)) for _, label, value in rows),
        fields=tuple(f for f, _, _ in rows),
    )


def title_of(cert: Certificate, lang: str, edition: int = EDITION) -> str:
    L = labels(lang, edition)
    return L["title"] if cert.success else L["title_failure"]


def _head(cert: Certificate, digest: str, url: str, E: Edition) -> list[Block]:
    L = E.L
    return [
        Head(
            organisation=cert.person.organisation or "Tabula",
            title=L["title"] if cert.success else L["title_failure"],
            id_line=f"{L['certificate_id']}: {cert.certificate_id}",
            qr=qr_payload(cert.certificate_id, digest, url),
        )
    ]


def _banner(cert: Certificate, E: Edition) -> list[Block]:
    L = E.L
    if cert.success:
        banner = Banner(L["banner_success"], "success")
    elif cert.result.outcome == "unverified":
        banner = Banner(L["banner_unverified"], "unverified")
    else:
        banner = Banner(L["banner_failure"], "failure")
    out: list[Block] = [Space(2), banner]
    if not cert.success:
        reasons = "; ".join(E.say(r) for r in cert.result.reasons)
        out.append(Text(f"{L['reasons']}: " + reasons, "label", "reasons"))
    return out


def person_grid(p: Any, L: dict[str, str], prefix: str = "person") -> Grid:
    return _grid(
        [
            (f"{prefix}.name", L["name"], p.name if p else ""),
            (f"{prefix}.title", L["title_field"], p.title if p else ""),
            (f"{prefix}.organisation", L["organisation"], p.organisation if p else ""),
            (f"{prefix}.location", L["location"], p.location if p else ""),
            (f"{prefix}.contact", L["contact"], p.contact if p else ""),
        ]
    )


def _person(cert: Certificate, E: Edition) -> list[Block]:
    return [Text(E.L["person"], "h2"), person_grid(cert.person, E.L)]


def _hidden(h: HiddenArea, E: Edition) -> str:
    if h.status == "not_checked":
        return E.L["not_checked"]
    return E.say(h.status)


def _media(cert: Certificate, E: Edition) -> list[Block]:
    m = cert.media
    L = E.L
    return [
        Text(L["media"], "h2"),
        _grid(
            [
                ("manufacturer", L["manufacturer"], m.manufacturer),
                ("model", L["model"], m.model),
                ("serial", L["serial"], m.serial),
                ("wwn", L["wwn"], m.wwn),
                ("firmware", L["firmware"], m.firmware),
                ("media_type", L["media_type"], E.say(m.media_type)),
                ("interface", L["interface"], E.say(m.interface)),
                ("asset_number", L["asset"], m.asset_number),
                *_lot_row(m.lot, E),
                ("source", L["source"], m.source),
                ("classification", L["classification"], E.say(m.classification)),
                ("data_backed_up", L["backed_up"], L.get(m.data_backed_up, m.data_backed_up)),
                ("backup_location", L["backup_location"], m.backup_location),
                ("capacity", L["capacity"], f"{E.size(m.accessible_bytes)} / {E.size(m.native_bytes)}"),
                ("sector_size", L["sectors"], f"{m.logical_sector_size} / {m.physical_sector_size}"),
                (
                    "hidden_areas",
                    L["hidden"],
                    f"{_hidden(m.hidden_before, E)} / {_hidden(m.hidden_after, E)}",
                ),
            ]
        ),
    ]


def _level(level: str, E: Edition) -> str:
    if E.number < 2:
        return level
    return {"clear": "Clear", "purge": "Purge"}.get(level, E.say("none"))


def _sanitization(cert: Certificate, E: Edition) -> list[Block]:
    s = cert.sanitization
    v = cert.verification
    L = E.L
    level = f"{_level(s.level_requested, E)} / {_level(s.level_achieved, E)}" + (
        f" ({E.say(s.level_note)})" if s.level_note else ""
    )
    return [
        Text(L["sanitization"], "h2"),
        _grid(
            [
                ("method_type", L["method_type"], s.method_type),
                ("level", L["level"], level),
                ("method", L["method"], E.method(s.method)),
                ("method_details", L["details"], E.say(s.method_details)),
                ("technique", L["technique"], E.say(s.technique)),
                ("tool", L["tool"], f"{s.tool.name} {s.tool.version}"),
                ("verification.method", L["verification_method"], E.say(v.method)),
                ("verification.result", L["verification_result"], L.get(v.result, v.result)),
                ("post_classification", L["post_classification"], E.say(s.post_classification)),
                ("notes", L["notes"], E.say(s.notes)),
            ]
        ),
    ]


def _steps(cert: Certificate, E: Edition) -> list[Block]:
    L = E.L
    rows = tuple(
        (
            str(x.index + 1),
            E.say(x.technique) + (f" ({E.say(x.note)})" if x.note else ""),
            f"{x.bytes_written}/{x.bytes_total}" if x.kind == "overwrite" else E.say(x.status or ""),
            cell(E.when(x.started_at)),
            cell(E.when(x.finished_at)),
            _level(x.level_achieved, E),
        )
        for x in cert.sanitization.steps
    )
    return [
        Text(L["steps"], "h2"),
        Table(
            (L["step"], L["pattern"], L["bytes"], L["start"], L["end"], L["achieved"]),
            rows,
            (8, 62, 32, 31, 31, 16),
            "steps",
        ),
    ]


def _checks(cert: Certificate, E: Edition) -> list[Block]:
    checks = cert.verification.checks
    if not checks:
        return []
    L = E.L

    def coverage(pct: float) -> str:
        text = f"{pct:.2f}"
        return text.replace(".", ",") if E.number >= 2 and E.lang == "fr" else text

    rows = tuple(
        (
            str(c.pass_index + 1),
            f"{E.say(c.mode)}, {coverage(c.coverage_ppm / 10_000)} % ({c.bytes_checked} B)"
            if E.number < 2
            else f"{E.say(c.mode)}, {coverage(c.coverage_ppm / 10_000)} % ({c.bytes_checked} {L['bytes_unit']})",
            c.seed or "-",
            str(c.mismatch_count),
            cell(E.when(c.finished_at)),
            L["passed"] if c.passed else L["failed"],
        )
        for c in checks
    )
    return [
        Text(L["checks"], "h2"),
        Table(
            ("#", L["coverage"], L["seed"], L["mismatches"], L["end"], L["result"]),
            rows,
            (8, 45, 50, 20, 31, 26),
            "verification.checks",
        ),
    ]


def _errors(cert: Certificate, E: Edition) -> list[Block]:
    L = E.L
    out: list[Block] = [Text(L["errors"], "h2")]
    bad = cert.errors.bad_ranges
    if bad:
        shown = bad[:MAX_LISTED_RANGES]
        text = ", ".join(
            f"{r.offset}+{r.length} ({E.say(r.op)}{': ' + E.say(r.error) if r.error else ''})" for r in shown
        )
        if len(bad) > len(shown):
            text += f" ... (+{len(bad) - len(shown)})"
        unit = "B" if E.number < 2 else L["bytes_unit"]
        out.append(Text(f"{L['bad_ranges']} ({cert.errors.bad_bytes} {unit}): {text}", "body", "errors"))
    else:
        out.append(Text(f"{L['bad_ranges']}: {L['none']}", "body", "errors"))
    return out


def _health(cert: Certificate, E: Edition) -> list[Block]:
    if not cert.health:
        return []
    if E.number < 2:
        items = sorted(cert.health.items())
        return [
            Text(E.L["health"], "h2"),
            Grid(tuple((str(k), cell(str(v))) for k, v in items), tuple(f"health.{k}" for k, _ in items)),
        ]
    return [Text(E.L["health"], "h2"), health_grid(cert.health, E)]


def _texts(value: Any) -> list[str]:
    return [str(x) for x in value] if isinstance(value, list) else []


#: What diagnostics.health.to_dict() holds that the grid does not draw: the drive is in the media
#: section, SMART's own reasons are quoted in the verdict's, the rest is for machines.
_HEALTH_SILENT = frozenset(
    {
        "schema",
        "device",
        "model",
        "serial",
        "firmware",
        "protocol",
        "capacity_bytes",
        "tool",
        "status_reasons",
    }
)
_HEALTH_SHOWN = ("status", "verdict", "verdict_reasons", "attributes", "unknowns", "checked_at")


def health_grid(h: dict[str, Any], E: Edition) -> Grid:
    """The drive health summary (diagnostics.health) as labelled readings; any other key as it is."""
    L = E.L
    attrs = h.get("attributes")
    readings = (
        ", ".join(
            f"{fact_label(str(k), E.lang)} {v}" for k, v in sorted(attrs.items()) if v is not None and v != ""
        )
        if isinstance(attrs, dict)
        else cell(attrs)
    )
    verdict = str(h.get("verdict", ""))
    reasons = "; ".join(E.say(r) for r in _texts(h.get("verdict_reasons")))
    unknowns = ", ".join(fact_label(u, E.lang) for u in _texts(h.get("unknowns")))
    rows: list[tuple[str, str, Any]] = [
        ("health.status", L["smart_status"], E.say(str(h.get("status", "")))),
        ("health.verdict", L["verdict"], L.get(f"verdict_{verdict}", verdict)),
        ("health.verdict_reasons", L["verdict_reasons"], reasons),
        ("health.attributes", L["facts"], readings),
        ("health.unknowns", L["unknowns"], unknowns),
        ("health.checked_at", L["checked_at"], E.when(str(h.get("checked_at", "")))),
    ]
    other = sorted(k for k in h if k not in _HEALTH_SILENT and k not in _HEALTH_SHOWN)
    rows += [(f"health.{k}", str(k), str(h[k])) for k in other]
    return _grid(rows)


def _destination(cert: Certificate, E: Edition) -> list[Block]:
    d = cert.destination
    L = E.L
    marks = []
    for key, label_key in (
        ("internal_reuse", "internal_reuse"),
        ("external_reuse", "external_reuse"),
        ("recycling", "recycling"),
        ("manufacturer", "manufacturer_dest"),
        ("other", "other"),
    ):
        marks.append(f"{'[X]' if d.kind == key else '[ ]'} {L[label_key]}")
    text = "   ".join(marks) + (f" - {d.details}" if d.details else "")
    return [Text(L["destination"], "h2"), Text(text, "body", "destination")]


def signature_blocks(issued_at: str, validation: Any, E: Edition) -> list[Block]:
    L = E.L
    val = validation
    # room for a handwritten signature: two empty lines
    sig = Grid(((L["signature"], "\n\n"), (L["date"], cell(E.when(issued_at)))), ("signature", "issued_at"))
    validation_grid = _grid(
        [
            ("validation.name", L["name"], val.person.name if val else ""),
            ("validation.title", L["title_field"], val.person.title if val else ""),
            ("validation.organisation", L["organisation"], val.person.organisation if val else ""),
            ("validation.location", L["location"], val.person.location if val else ""),
            ("validation.contact", L["contact"], val.person.contact if val else ""),
            ("validation.signature", L["signature"], ""),
            ("validation.date", L["date"], E.when(val.date) if val else ""),
        ]
    )
    return [
        Keep((Text(L["signature"], "h2"), sig)),
        Keep((Text(L["validation"], "h2"), validation_grid)),
    ]


def _signature(cert: Certificate, E: Edition) -> list[Block]:
    return signature_blocks(cert.issued_at, cert.validation, E)


def footer_blocks(
    station: Any, issued_at: str, job_id: str, digest: str, note: str, E: Edition
) -> list[Block]:
    L = E.L
    key = "key" if E.number < 2 else L["key"]
    return [
        Space(3),
        _grid(
            [
                ("station", L["station"], f"{station.id} / {station.sequence} ({key} {station.kid[:16]})"),
                ("issued_at", L["issued"], E.when(issued_at)),
                ("job", L["job"], job_id),
                ("sha256", L["hash"], digest),
            ]
        ),
        Text(note, "small", "note"),
    ]


def _footer(cert: Certificate, digest: str, E: Edition) -> list[Block]:
    return footer_blocks(cert.station, cert.issued_at, cert.job.job_id, digest, E.L["signed_note"], E)


def page_blocks(
    cert: Certificate, digest: str, url: str, lang: str, edition: Edition | None = None
) -> list[Block]:
    """Every block of the certificate's page(s), in drawing order (the current edition by default)."""
    E = edition or Edition(EDITION, lang)
    return [
        *_head(cert, digest, url, E),
        *_banner(cert, E),
        *_person(cert, E),
        *_media(cert, E),
        *_sanitization(cert, E),
        *_steps(cert, E),
        *_checks(cert, E),
        *_errors(cert, E),
        *_health(cert, E),
        *_destination(cert, E),
        *_signature(cert, E),
        *_footer(cert, digest, E),
    ]


def pdf_metadata(cert: Certificate, digest: str, lang: str, edition: int = EDITION) -> dict[str, str]:
    """The document information the PDF carries; :mod:`certs.pdfcheck` compares it with the record."""
    return {
        "/Title": f"{title_of(cert, lang, edition)} {cert.certificate_id}",
        "/Subject": f"sha256:{digest}",
        "/Keywords": f"tabula {cert.kind} {cert.certificate_id}",
        "/TabulaCertificateId": cert.certificate_id,
        "/TabulaSHA256": digest,
    }


# --- the destruction record's page ---------------------------------------------------------------


def _destruction_head(d: DestructionRecord, digest: str, url: str, E: Edition) -> list[Block]:
    L = E.L
    return [
        Head(
            organisation=d.person.organisation or "Tabula",
            title=L["destruction_title"],
            id_line=f"{L['record_id']}: {d.record_id}",
            qr=qr_payload(d.record_id, digest, url),
        ),
        Space(2),
        Banner(L["destruction_banner"], "destroyed"),
        Text(L["nist_destroy"], "label", "kind"),
    ]


def _lot_row(lot: str | None, E: Edition) -> list[tuple[str, str, Any]]:
    """The donation lot, on the pages of records that carry one (no row at all for the others: pages
    drawn before lots existed stay as they were)."""
    return [("lot", E.L["lot"], lot)] if lot is not None else []


def _destroyed_media(d: DestructionRecord, E: Edition) -> list[Block]:
    m = d.media
    L = E.L
    return [
        Text(L["media"], "h2"),
        _grid(
            [
                ("manufacturer", L["manufacturer"], m.manufacturer),
                ("model", L["model"], m.model),
                ("serial", L["serial"], m.serial),
                ("wwn", L["wwn"], m.wwn),
                ("media_type", L["media_type"], E.say(m.media_type)),
                ("interface", L["interface"], E.say(m.interface)),
                ("capacity", L["capacity"].split(" (")[0], E.size(m.size_bytes)),
                ("asset_number", L["asset"], m.asset_number),
                *_lot_row(m.lot, E),
                ("source", L["source"], m.source),
            ]
        ),
    ]


def _destruction_facts(d: DestructionRecord, E: Edition) -> list[Block]:
    x = d.destruction
    L = E.L
    photo = f"{x.photo.path} (SHA-256 {x.photo.sha256 or '?'})" if x.photo else ""
    return [
        Text(L["destruction"], "h2"),
        _grid(
            [
                ("destruction.method", L["destruction_method"], f"{x.method}: {L['destroy_' + x.method]}"),
                ("destruction.performed_by", L["performed_by"], x.performed_by),
                ("destruction.witness", L["witness"], x.witness),
                ("destruction.destroyed_at", L["destroyed_at"], E.when(x.destroyed_at)),
                ("destruction.photo", L["photo"], photo),
                ("destruction.notes", L["notes"], x.notes),
            ]
        ),
    ]


def _failed_job(d: DestructionRecord, E: Edition) -> list[Block]:
    f = d.failed_job
    L = E.L
    report = f"{f.report_id} / {f.report_sha256}" if f.report_id else ""
    return [
        Text(L["failed_job"], "h2"),
        _grid(
            [
                ("failed_job.job_id", L["job"], f.job_id),
                ("failed_job.outcome", L["outcome"], E.say(f.outcome)),
                ("failed_job.reasons", L["reasons"], "; ".join(E.say(r) for r in f.reasons)),
                ("failed_job.report", L["failure_report"], report),
            ]
        ),
    ]


def destruction_blocks(d: DestructionRecord, digest: str, url: str, edition: Edition) -> list[Block]:
    """Every block of a destruction record's page, in drawing order."""
    E = edition
    return [
        *_destruction_head(d, digest, url, E),
        *_destroyed_media(d, E),
        *_destruction_facts(d, E),
        *_failed_job(d, E),
        Text(E.L["recorded_by"], "h2"),
        person_grid(d.person, E.L),
        *signature_blocks(d.issued_at, None, E),
        *footer_blocks(d.station, d.issued_at, d.failed_job.job_id, digest, E.L["destruction_note"], E),
    ]


SignedRecord = Certificate | DestructionRecord


def blocks_of(record: SignedRecord, digest: str, url: str, edition: Edition) -> list[Block]:
    """The page of any signed record the station draws."""
    if isinstance(record, DestructionRecord):
        return destruction_blocks(record, digest, url, edition)
    return page_blocks(record, digest, url, edition.lang, edition)


def metadata_of(record: SignedRecord, digest: str, edition: Edition) -> dict[str, str]:
    if isinstance(record, DestructionRecord):
        return {
            "/Title": f"{edition.L['destruction_title']} {record.record_id}",
            "/Subject": f"sha256:{digest}",
            "/Keywords": f"tabula destruction {record.record_id}",
            "/TabulaCertificateId": record.record_id,
            "/TabulaSHA256": digest,
        }
    return pdf_metadata(record, digest, edition.lang, edition.number)


@dataclass(frozen=True)
class Segment:
    """A run of text the page shows, in drawing order, and the record field it comes from."""

    field: str
    text: str
    repeatable: bool = False  # a table header, repeated when the table continues on the next page


def segments(blocks: list[Block]) -> Iterator[Segment]:
    for b in blocks:
        if isinstance(b, Head):
            yield Segment("organisation", b.organisation)
            yield Segment("outcome", b.title)
            yield Segment("certificate_id", b.id_line)
        elif isinstance(b, Banner):
            yield Segment("outcome", b.text)
        elif isinstance(b, Text):
            yield Segment(b.field, b.text)
        elif isinstance(b, Grid):
            for (label, value), f in zip(b.rows, b.fields, strict=True):
                yield Segment(f, label + value)
        elif isinstance(b, Table):
            yield Segment(b.field, "".join(b.head), repeatable=True)
            for i, row in enumerate(b.rows):
                yield Segment(f"{b.field}[{i + 1}]", "".join(row))
        elif isinstance(b, Keep):
            yield from segments(list(b.blocks))
