"""What the PDF certificate's page says, section by section, as plain data.

:mod:`certs.pdf` lays these blocks out with reportlab; :mod:`certs.pdfcheck` reads a PDF's page back and
compares it with the blocks built from the *signed* record.  One source for both means the page check
compares exactly what is drawn, and every block names the record field it shows (``serial``,
``outcome``...), so a mismatch says which field differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from certs.i18n import labels
from certs.model import Certificate, HiddenArea

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


def qr_payload(cert_id: str, digest: str, url: str = "") -> str:
    """What the QR code holds: the certificate id, the signed record's hash, and the verification URL."""
    if url:
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}id={cert_id}&sha256={digest}"
    return f"tabula-cert:{cert_id};sha256={digest}"


def size_text(n: int | None) -> str:
    if n is None:
        return "?"
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    v = float(n)
    i = 0
    while v >= 1000 and i < len(units) - 1:
        v /= 1000
        i += 1
    return f"{n} B" if i == 0 else f"{v:.2f} {units[i]} ({n} B)"


def cell(value: Any) -> str:
    """A grid value as drawn: empty values show as '-'."""
    return "-" if value is None or value == "" else str(value)


def _grid(rows: list[tuple[str, str, Any]]) -> Grid:
    """A grid from (field, label, value) triples."""
    return Grid(
        rows=tuple((label, cell(value)) for _, label, value in rows),
        fields=tuple(f for f, _, _ in rows),
    )


def title_of(cert: Certificate, lang: str) -> str:
    L = labels(lang)
    return L["title"] if cert.success else L["title_failure"]


def _head(cert: Certificate, digest: str, url: str, L: dict[str, str]) -> list[Block]:
    return [
        Head(
            organisation=cert.person.organisation or "Tabula",
            title=L["title"] if cert.success else L["title_failure"],
            id_line=f"{L['certificate_id']}: {cert.certificate_id}",
            qr=qr_payload(cert.certificate_id, digest, url),
        )
    ]


def _banner(cert: Certificate, L: dict[str, str]) -> list[Block]:
    if cert.success:
        banner = Banner(L["banner_success"], "success")
    elif cert.result.outcome == "unverified":
        banner = Banner(L["banner_unverified"], "unverified")
    else:
        banner = Banner(L["banner_failure"], "failure")
    out: list[Block] = [Space(2), banner]
    if not cert.success:
        out.append(Text(f"{L['reasons']}: " + "; ".join(cert.result.reasons), "label", "reasons"))
    return out


def _person(cert: Certificate, L: dict[str, str]) -> list[Block]:
    p = cert.person
    return [
        Text(L["person"], "h2"),
        _grid(
            [
                ("person.name", L["name"], p.name),
                ("person.title", L["title_field"], p.title),
                ("person.organisation", L["organisation"], p.organisation),
                ("person.location", L["location"], p.location),
                ("person.contact", L["contact"], p.contact),
            ]
        ),
    ]


def _hidden(h: HiddenArea, L: dict[str, str]) -> str:
    return L["not_checked"] if h.status == "not_checked" else h.status


def _media(cert: Certificate, L: dict[str, str]) -> list[Block]:
    m = cert.media
    return [
        Text(L["media"], "h2"),
        _grid(
            [
                ("manufacturer", L["manufacturer"], m.manufacturer),
                ("model", L["model"], m.model),
                ("serial", L["serial"], m.serial),
                ("wwn", L["wwn"], m.wwn),
                ("firmware", L["firmware"], m.firmware),
                ("media_type", L["media_type"], m.media_type),
                ("interface", L["interface"], m.interface),
                ("asset_number", L["asset"], m.asset_number),
                ("source", L["source"], m.source),
                ("classification", L["classification"], m.classification),
                ("data_backed_up", L["backed_up"], L.get(m.data_backed_up, m.data_backed_up)),
                ("backup_location", L["backup_location"], m.backup_location),
                (
                    "capacity",
                    L["capacity"],
                    f"{size_text(m.accessible_bytes)} / {size_text(m.native_bytes)}",
                ),
                ("sector_size", L["sectors"], f"{m.logical_sector_size} / {m.physical_sector_size}"),
                (
                    "hidden_areas",
                    L["hidden"],
                    f"{_hidden(m.hidden_before, L)} / {_hidden(m.hidden_after, L)}",
                ),
            ]
        ),
    ]


def _sanitization(cert: Certificate, L: dict[str, str]) -> list[Block]:
    s = cert.sanitization
    v = cert.verification
    level = f"{s.level_requested} / {s.level_achieved}" + (f" ({s.level_note})" if s.level_note else "")
    return [
        Text(L["sanitization"], "h2"),
        _grid(
            [
                ("method_type", L["method_type"], s.method_type),
                ("level", L["level"], level),
                ("method", L["method"], s.method),
                ("method_details", L["details"], s.method_details),
                ("technique", L["technique"], s.technique),
                ("tool", L["tool"], f"{s.tool.name} {s.tool.version}"),
                ("verification.method", L["verification_method"], v.method),
                ("verification.result", L["verification_result"], L.get(v.result, v.result)),
                ("post_classification", L["post_classification"], s.post_classification),
                ("notes", L["notes"], s.notes),
            ]
        ),
    ]


def _steps(cert: Certificate, L: dict[str, str]) -> list[Block]:
    rows = tuple(
        (
            str(x.index + 1),
            x.technique + (f" ({x.note})" if x.note else ""),
            f"{x.bytes_written}/{x.bytes_total}" if x.kind == "overwrite" else (x.status or ""),
            x.started_at,
            x.finished_at or "-",
            x.level_achieved,
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


def _checks(cert: Certificate, L: dict[str, str]) -> list[Block]:
    checks = cert.verification.checks
    if not checks:
        return []
    rows = tuple(
        (
            str(c.pass_index + 1),
            f"{c.mode}, {c.coverage_ppm / 10_000:.2f} % ({c.bytes_checked} B)",
            c.seed or "-",
            str(c.mismatch_count),
            c.finished_at,
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


def _errors(cert: Certificate, L: dict[str, str]) -> list[Block]:
    out: list[Block] = [Text(L["errors"], "h2")]
    bad = cert.errors.bad_ranges
    if bad:
        shown = bad[:MAX_LISTED_RANGES]
        text = ", ".join(f"{r.offset}+{r.length} ({r.op}{': ' + r.error if r.error else ''})" for r in shown)
        if len(bad) > len(shown):
            text += f" ... (+{len(bad) - len(shown)})"
        out.append(Text(f"{L['bad_ranges']} ({cert.errors.bad_bytes} B): {text}", "body", "errors"))
    else:
        out.append(Text(f"{L['bad_ranges']}: {L['none']}", "body", "errors"))
    return out


def _health(cert: Certificate, L: dict[str, str]) -> list[Block]:
    if not cert.health:
        return []
    items = sorted(cert.health.items())
    return [
        Text(L["health"], "h2"),
        Grid(tuple((str(k), cell(str(v))) for k, v in items), tuple(f"health.{k}" for k, _ in items)),
    ]


def _destination(cert: Certificate, L: dict[str, str]) -> list[Block]:
    d = cert.destination
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


def _signature(cert: Certificate, L: dict[str, str]) -> list[Block]:
    val = cert.validation
    # room for a handwritten signature: two empty lines
    sig = Grid(((L["signature"], "\n\n"), (L["date"], cert.issued_at)), ("signature", "issued_at"))
    validation = _grid(
        [
            ("validation.name", L["name"], val.person.name if val else ""),
            ("validation.title", L["title_field"], val.person.title if val else ""),
            ("validation.organisation", L["organisation"], val.person.organisation if val else ""),
            ("validation.location", L["location"], val.person.location if val else ""),
            ("validation.contact", L["contact"], val.person.contact if val else ""),
            ("validation.signature", L["signature"], ""),
            ("validation.date", L["date"], val.date if val else ""),
        ]
    )
    return [
        Keep((Text(L["signature"], "h2"), sig)),
        Keep((Text(L["validation"], "h2"), validation)),
    ]


def _footer(cert: Certificate, digest: str, L: dict[str, str]) -> list[Block]:
    st = cert.station
    return [
        Space(3),
        _grid(
            [
                ("station", L["station"], f"{st.id} / {st.sequence} (key {st.kid[:16]})"),
                ("issued_at", L["issued"], cert.issued_at),
                ("job", L["job"], cert.job.job_id),
                ("sha256", L["hash"], digest),
            ]
        ),
        Text(L["signed_note"], "small", "note"),
    ]


def page_blocks(cert: Certificate, digest: str, url: str, lang: str) -> list[Block]:
    """Every block of the certificate's page(s), in drawing order."""
    L = labels(lang)
    return [
        *_head(cert, digest, url, L),
        *_banner(cert, L),
        *_person(cert, L),
        *_media(cert, L),
        *_sanitization(cert, L),
        *_steps(cert, L),
        *_checks(cert, L),
        *_errors(cert, L),
        *_health(cert, L),
        *_destination(cert, L),
        *_signature(cert, L),
        *_footer(cert, digest, L),
    ]


def pdf_metadata(cert: Certificate, digest: str, lang: str) -> dict[str, str]:
    """The document information the PDF carries; :mod:`certs.pdfcheck` compares it with the record."""
    return {
        "/Title": f"{title_of(cert, lang)} {cert.certificate_id}",
        "/Subject": f"sha256:{digest}",
        "/Keywords": f"tabula {cert.kind} {cert.certificate_id}",
        "/TabulaCertificateId": cert.certificate_id,
        "/TabulaSHA256": digest,
    }


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
