"""A4 PDF certificate (reportlab), laid out like the NIST SP 800-88 sample certificate.

The page's content comes from :mod:`certs.page` (one block per section); this module only lays it out.
The signed record (the JWS file, byte for byte) is embedded as the PDF file attachment
``tabula-certificate.json`` (the only EmbeddedFile, in the document's /Names tree, as PDF/A-3 does), so
the PDF alone can be verified.  The signed attachment is authoritative; ``station verify`` also checks
that the page, the QR code and the metadata say what it says (:mod:`certs.pdfcheck`).
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as RLTable

from certs.jws import Envelope
from certs.model import Certificate
from certs.page import (
    EDITION,
    Banner,
    Block,
    Edition,
    Grid,
    Head,
    Keep,
    SignedRecord,
    Table,
    Text,
    blocks_of,
    metadata_of,
    pdf_metadata,
    qr_payload,
)
from certs.pdfcheck import ATTACHMENT, extract_signed

__all__ = [
    "ATTACHMENT",
    "extract_signed",
    "pdf_metadata",
    "pdf_text",
    "qr_payload",
    "render_pdf",
    "render_record",
]


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
) -> RLTable:
    data = [[_p(k, st.label), _p(v, st.body)] for k, v in rows]  # values as certs.page shows them
    t = RLTable(data, colWidths=list(widths))
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


def _table(head: list[str], rows: list[list[Any]], widths: list[float], st: _Styles) -> RLTable:
    data = [[_p(h, st.label) for h in head]] + [[_p(c, st.small) for c in r] for r in rows]
    t = RLTable(data, colWidths=widths, repeatRows=1)
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


def qr_drawing(value: str, size: float = 32 * mm) -> Drawing:
    """The QR code of ``value`` as a reportlab drawing of ``size`` points."""
    w = QrCodeWidget(value)
    x0, y0, x1, y1 = w.getBounds()
    d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    d.add(w)
    return d


_BANNER_COLOURS = {
    "success": "#1b7f3b",
    "unverified": "#b26a00",
    "failure": "#b00020",
    "destroyed": "#37474f",
}


_qr = qr_drawing


def _head_table(b: Head, st: _Styles) -> RLTable:
    qr: Any = qr_drawing(b.qr) if b.qr else ""  # a lot report without a donor page has no QR code
    head = RLTable(
        [[[_p(b.organisation, st.h2), _p(b.title, st.h1), _p(b.id_line, st.body)], qr]],
        colWidths=[145 * mm, 35 * mm],
    )
    head.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return head


def _banner_table(b: Banner, st: _Styles) -> RLTable:
    bt = RLTable([[_p(b.text, st.banner)]], colWidths=[180 * mm])
    colour = colors.HexColor(_BANNER_COLOURS[b.colour])
    bt.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour), ("TOPPADDING", (0, 0), (-1, -1), 4)]))
    return bt


def _flowable(b: Block, st: _Styles) -> Flowable:
    if isinstance(b, Head):
        return _head_table(b, st)
    if isinstance(b, Banner):
        return _banner_table(b, st)
    if isinstance(b, Text):
        return _p(b.text, getattr(st, b.style))
    if isinstance(b, Grid):
        return _grid(list(b.rows), st)
    if isinstance(b, Table):
        return _table(list(b.head), [list(r) for r in b.rows], [w * mm for w in b.widths_mm], st)
    if isinstance(b, Keep):
        return KeepTogether([_flowable(x, st) for x in b.blocks])
    return Spacer(1, b.mm * mm)


def flowables(blocks: list[Block]) -> list[Flowable]:
    """The reportlab flowables of a page's blocks (:mod:`certs.page`), as the certificate draws them."""
    st = _Styles()
    return [_flowable(b, st) for b in blocks]


def render_pdf(
    cert: Certificate, env: Envelope, signed_file: bytes, *, url: str = "", lang: str = "en"
) -> bytes:
    """The PDF certificate with ``signed_file`` (the JWS file bytes) embedded as an attachment."""
    return render_record(cert, env, signed_file, url=url, lang=lang)


def render_record(
    record: SignedRecord, env: Envelope, signed_file: bytes, *, url: str = "", lang: str = "en"
) -> bytes:
    """The PDF of a signed record (certificate, failure report or destruction record), in the current
    page edition, with ``signed_file`` (the JWS file bytes) embedded as an attachment."""
    edition = Edition(EDITION, lang)
    buf = io.BytesIO()
    meta = metadata_of(record, env.digest, edition)
    tool = record.sanitization.tool if isinstance(record, Certificate) else record.tool
    st = _Styles()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=meta["/Title"],
        author=record.person.organisation or "Tabula",
        subject=meta["/Subject"],
        keywords=meta["/Keywords"],
        creator=f"{tool.name} {tool.version}",
    )
    doc.build([_flowable(b, st) for b in blocks_of(record, env.digest, url, edition)])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    writer.add_attachment(ATTACHMENT, signed_file)
    writer.add_metadata({k: v for k, v in meta.items() if k.startswith("/Tabula")})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_text(data: bytes) -> str:
    """All extractable text of a PDF (for tests and for people)."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)
