"""A4 PDF certificate (reportlab), laid out like the NIST SP 800-88 sample certificate.

The signed record (the JWS file, byte for byte) is embedded as the PDF file attachment
``tabula-certificate.json`` (an EmbeddedFile in the document's /Names tree, as PDF/A-3 does), so the
PDF alone can be verified; pypdf reads it back (``PdfReader(...).attachments``).  The visible text is
a rendering for people: the signed attachment is authoritative, and ``station verify`` judges it.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.errors import PyPdfError
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from certs.errors import PdfError
from certs.i18n import labels
from certs.jws import Envelope
from certs.model import Certificate

ATTACHMENT = "tabula-certificate.json"
MAX_LISTED_RANGES = 20


def qr_payload(cert_id: str, digest: str, url: str = "") -> str:
    """What the QR code holds: the certificate id, the signed record's hash, and the verification URL."""
    if url:
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}id={cert_id}&sha256={digest}"
    return f"tabula-cert:{cert_id};sha256={digest}"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    v = float(n)
    i = 0
    while v >= 1000 and i < len(units) - 1:
        v /= 1000
        i += 1
    return f"{n} B" if i == 0 else f"{v:.2f} {units[i]} ({n} B)"


class _Styles:
    def __init__(self) -> None:
        base = getSampleStyleSheet()
        self.body = ParagraphStyle(
            "body", parent=base["BodyText"], fontName="Helvetica", fontSize=8, leading=10
        )
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7, leading=8.5)
        self.label = ParagraphStyle("label", parent=self.body, fontName="Helvetica-Bold")
        self.h1 = ParagraphStyle(
            "h1", parent=base["Title"], fontName="Helvetica-Bold", fontSize=16, leading=19
        )
        self.h2 = ParagraphStyle(
            "h2",
            parent=base["Heading2"],
            fontName="Helvetica-Bold",
            fontSize=10,
            leading=12,
            spaceBefore=5,
            keepWithNext=1,
        )
        self.banner = ParagraphStyle(
            "banner", parent=self.h1, fontSize=22, leading=26, textColor=colors.white, alignment=1
        )


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def _grid(
    rows: list[tuple[str, Any]], st: _Styles, widths: tuple[float, float] = (55 * mm, 125 * mm)
) -> Table:
    data = [[_p(k, st.label), _p(v if v not in (None, "") else "-", st.body)] for k, v in rows]
    t = Table(data, colWidths=list(widths))
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eeeeee")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return t


def _table(head: list[str], rows: list[list[Any]], widths: list[float], st: _Styles) -> Table:
    data = [[_p(h, st.label) for h in head]] + [[_p(c, st.small) for c in r] for r in rows]
    t = Table(data, colWidths=widths, repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dddddd")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return t


def _qr(value: str, size: float = 32 * mm) -> Drawing:
    w = QrCodeWidget(value)
    x0, y0, x1, y1 = w.getBounds()
    d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    d.add(w)
    return d


def _story(cert: Certificate, digest: str, url: str, lang: str) -> list[Flowable]:
    L = labels(lang)
    st = _Styles()
    story: list[Flowable] = []
    org = cert.person.organisation
    title = L["title"] if cert.success else L["title_failure"]
    head = Table(
        [
            [
                [
                    _p(org or "Tabula", st.h2),
                    _p(title, st.h1),
                    _p(f"{L['certificate_id']}: {cert.certificate_id}", st.body),
                ],
                _qr(qr_payload(cert.certificate_id, digest, url)),
            ]
        ],
        colWidths=[145 * mm, 35 * mm],
    )
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(head)

    if cert.success:
        banner, colour = L["banner_success"], colors.HexColor("#1b7f3b")
    elif cert.result.outcome == "unverified":
        banner, colour = L["banner_unverified"], colors.HexColor("#b26a00")
    else:
        banner, colour = L["banner_failure"], colors.HexColor("#b00020")
    bt = Table([[_p(banner, st.banner)]], colWidths=[180 * mm])
    bt.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour), ("TOPPADDING", (0, 0), (-1, -1), 4)]))
    story += [Spacer(1, 2 * mm), bt]
    if not cert.success:
        story.append(_p(f"{L['reasons']}: " + "; ".join(cert.result.reasons), st.label))

    p = cert.person
    story += [_p(L["person"], st.h2)]
    story.append(
        _grid(
            [
                (L["name"], p.name),
                (L["title_field"], p.title),
                (L["organisation"], p.organisation),
                (L["location"], p.location),
                (L["contact"], p.contact),
            ],
            st,
        )
    )

    m = cert.media

    def hidden(h: Any) -> str:
        return L["not_checked"] if h.status == "not_checked" else h.status

    story += [_p(L["media"], st.h2)]
    story.append(
        _grid(
            [
                (L["manufacturer"], m.manufacturer),
                (L["model"], m.model),
                (L["serial"], m.serial),
                (L["wwn"], m.wwn),
                (L["firmware"], m.firmware),
                (L["media_type"], m.media_type),
                (L["interface"], m.interface),
                (L["asset"], m.asset_number),
                (L["source"], m.source),
                (L["classification"], m.classification),
                (L["backed_up"], L.get(m.data_backed_up, m.data_backed_up)),
                (L["backup_location"], m.backup_location),
                (L["capacity"], f"{_size(m.accessible_bytes)} / {_size(m.native_bytes)}"),
                (L["sectors"], f"{m.logical_sector_size} / {m.physical_sector_size}"),
                (L["hidden"], f"{hidden(m.hidden_before)} / {hidden(m.hidden_after)}"),
            ],
            st,
        )
    )

    s = cert.sanitization
    v = cert.verification
    story += [_p(L["sanitization"], st.h2)]
    story.append(
        _grid(
            [
                (L["method_type"], s.method_type),
                (
                    L["level"],
                    f"{s.level_requested} / {s.level_achieved}"
                    + (f" ({s.level_note})" if s.level_note else ""),
                ),
                (L["method"], s.method),
                (L["details"], s.method_details),
                (L["technique"], s.technique),
                (L["tool"], f"{s.tool.name} {s.tool.version}"),
                (L["verification_method"], v.method),
                (L["verification_result"], L.get(v.result, v.result)),
                (L["post_classification"], s.post_classification),
                (L["notes"], s.notes),
            ],
            st,
        )
    )
    story.append(_p(L["steps"], st.h2))
    story.append(
        _table(
            [L["step"], L["pattern"], L["bytes"], L["start"], L["end"], L["achieved"]],
            [
                [
                    str(x.index + 1),
                    x.technique + (f" ({x.note})" if x.note else ""),
                    f"{x.bytes_written}/{x.bytes_total}" if x.kind == "overwrite" else (x.status or ""),
                    x.started_at,
                    x.finished_at or "-",
                    x.level_achieved,
                ]
                for x in s.steps
            ],
            [8 * mm, 62 * mm, 32 * mm, 31 * mm, 31 * mm, 16 * mm],
            st,
        )
    )
    if v.checks:
        story.append(_p(L["checks"], st.h2))
        story.append(
            _table(
                ["#", L["coverage"], L["seed"], L["mismatches"], L["end"], L["result"]],
                [
                    [
                        str(c.pass_index + 1),
                        f"{c.mode}, {c.coverage_ppm / 10_000:.2f} % ({c.bytes_checked} B)",
                        c.seed or "-",
                        str(c.mismatch_count),
                        c.finished_at,
                        L["passed"] if c.passed else L["failed"],
                    ]
                    for c in v.checks
                ],
                [8 * mm, 45 * mm, 50 * mm, 20 * mm, 31 * mm, 26 * mm],
                st,
            )
        )
    story.append(_p(L["errors"], st.h2))
    if cert.errors.bad_ranges:
        shown = cert.errors.bad_ranges[:MAX_LISTED_RANGES]
        text = ", ".join(f"{r.offset}+{r.length} ({r.op}{': ' + r.error if r.error else ''})" for r in shown)
        more = len(cert.errors.bad_ranges) - len(shown)
        if more:
            text += f" ... (+{more})"
        story.append(_p(f"{L['bad_ranges']} ({cert.errors.bad_bytes} B): {text}", st.body))
    else:
        story.append(_p(f"{L['bad_ranges']}: {L['none']}", st.body))

    if cert.health:
        story.append(_p(L["health"], st.h2))
        story.append(_grid([(str(k), str(val)) for k, val in sorted(cert.health.items())], st))

    d = cert.destination
    dest_rows = []
    for key, label_key in (
        ("internal_reuse", "internal_reuse"),
        ("external_reuse", "external_reuse"),
        ("recycling", "recycling"),
        ("manufacturer", "manufacturer_dest"),
        ("other", "other"),
    ):
        mark = "[X]" if d.kind == key else "[ ]"
        dest_rows.append(f"{mark} {L[label_key]}")
    story.append(_p(L["destination"], st.h2))
    story.append(_p("   ".join(dest_rows) + (f" - {d.details}" if d.details else ""), st.body))

    sig_rows: list[tuple[str, Any]] = [
        (L["signature"], "\n\n"),
        (L["date"], cert.issued_at),
    ]
    story.append(KeepTogether([_p(L["signature"], st.h2), _grid(sig_rows, st)]))
    val = cert.validation
    val_rows: list[tuple[str, Any]] = [
        (L["name"], val.person.name if val else ""),
        (L["title_field"], val.person.title if val else ""),
        (L["organisation"], val.person.organisation if val else ""),
        (L["location"], val.person.location if val else ""),
        (L["contact"], val.person.contact if val else ""),
        (L["signature"], ""),
        (L["date"], val.date if val else ""),
    ]
    story.append(KeepTogether([_p(L["validation"], st.h2), _grid(val_rows, st)]))

    story.append(Spacer(1, 3 * mm))
    story.append(
        _grid(
            [
                (L["station"], f"{cert.station.id} / {cert.station.sequence} (key {cert.station.kid[:16]})"),
                (L["issued"], cert.issued_at),
                (L["job"], cert.job.job_id),
                (L["hash"], digest),
            ],
            st,
        )
    )
    story.append(_p(L["signed_note"], st.small))
    return story


def render_pdf(
    cert: Certificate, env: Envelope, signed_file: bytes, *, url: str = "", lang: str = "en"
) -> bytes:
    """The PDF certificate with ``signed_file`` (the JWS file bytes) embedded as an attachment."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"{labels(lang)['title'] if cert.success else labels(lang)['title_failure']} {cert.certificate_id}",
        author=cert.person.organisation or "Tabula",
        subject=f"sha256:{env.digest}",
        creator=f"{cert.sanitization.tool.name} {cert.sanitization.tool.version}",
    )
    doc.build(_story(cert, env.digest, url, lang))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    writer.add_attachment(ATTACHMENT, signed_file)
    writer.add_metadata({"/TabulaCertificateId": cert.certificate_id, "/TabulaSHA256": env.digest})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def extract_signed(data: bytes, source: str = "PDF") -> bytes:
    """The signed record embedded in a Tabula PDF certificate."""
    try:
        reader = PdfReader(io.BytesIO(data))
        found = reader.attachments.get(ATTACHMENT)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        # pypdf reports damaged files through many exception types; all mean "unreadable PDF"
        raise PdfError(f"{source} is not a readable PDF ({type(e).__name__}: {e})") from e
    if not found:
        raise PdfError(f"{source} carries no signed record (no '{ATTACHMENT}' attachment)")
    if len(found) != 1:
        raise PdfError(f"{source} carries {len(found)} signed records; expected exactly one")
    return found[0]


def pdf_text(data: bytes) -> str:
    """All extractable text of a PDF (for tests and for people)."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
