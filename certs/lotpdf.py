"""The lot report's PDF: A4, French or English, with a QR code to the donor page.

The page's content comes from :mod:`certs.lotpage`; the layout is the certificate's (:mod:`certs.pdf`).
Given the signed file (``signed=``, the JWS bytes :func:`certs.lotreport.sign_lot_report` returns),
the PDF embeds it as its one attachment, ``tabula-lot-report.json``, the way a certificate's PDF embeds
its record, so the PDF alone verifies: ``station verify REPORT.pdf`` reads the attachment, checks it,
then draws the page again from the signed report and compares it with the PDF's text (every block, in
order, in the language closest to the page), its QR code (the signed donor page URL) and its document
information (:func:`check_lot_page`).  As for certificates, this catches an edited page; the signed
report stays authoritative.
"""

from __future__ import annotations

import io
from typing import Any

from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import SimpleDocTemplate

from certs.errors import CertError, PageMismatch, QrError
from certs.lotpage import lot_blocks, lot_metadata
from certs.lotreport import LotReport
from certs.page import segments
from certs.pdf import flowables
from certs.pdfcheck import compare_segments, first_page_qr, open_pdf, page_text

#: The name of the signed report embedded in the PDF.
LOT_ATTACHMENT = "tabula-lot-report.json"
LANGUAGES = ("en", "fr")


def render_lot_report(report: LotReport, lang: str, *, signed: bytes | None = None) -> bytes:
    """The lot report's PDF in ``lang`` ("en" or "fr"); with ``signed``, the signed file is embedded."""
    buf = io.BytesIO()
    meta = lot_metadata(report, lang)
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=meta["/Title"],
        author=report.organisation.name,
        subject=meta["/Subject"],
        keywords=meta["/Keywords"],
        creator="Tabula",
    )
    doc.build(flowables(lot_blocks(report, lang)))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buf.getvalue())))
    if signed is not None:
        writer.add_attachment(LOT_ATTACHMENT, signed)
    writer.add_metadata({k: v for k, v in meta.items() if k.startswith("/Tabula")})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def check_lot_page(data: bytes, report: LotReport) -> list[PageMismatch]:
    """What the PDF's page, QR code and document information say that the signed report does not."""
    try:
        reader = open_pdf(data)
        out = _compare_qr(reader, report)  # first: it parses page 1, which the text extraction reuses
        text = page_text(reader)
        best: list[PageMismatch] | None = None
        best_lang = LANGUAGES[0]
        for lang in LANGUAGES:
            found = compare_segments(text, segments(lot_blocks(report, lang)))
            if best is None or len(found) < len(best):
                best, best_lang = found, lang
            if not found:
                break
        assert best is not None
        return out + best + _compare_metadata(reader, report, best_lang)
    except CertError as e:
        return [PageMismatch("page", f"cannot read the page: {e.message}")]
    except Exception as e:  # noqa: BLE001 - pypdf's text extraction fails in many ways on damaged files
        return [PageMismatch("page", f"cannot read the page ({type(e).__name__}: {str(e)[:200]})")]


def _compare_qr(reader: PdfReader, report: LotReport) -> list[PageMismatch]:
    try:
        text: str | None = first_page_qr(reader)
    except QrError as e:
        text = None
        if report.donor_page is not None:
            return [PageMismatch("qr_code", f"no readable QR code on the first page: {e.message}")]
    if text != report.donor_page:
        return [
            PageMismatch(
                "qr_code", f"holds {str(text)[:160]!r}, not the signed {str(report.donor_page)[:200]!r}"
            )
        ]
    return []


def _compare_metadata(reader: PdfReader, report: LotReport, lang: str) -> list[PageMismatch]:
    out: list[PageMismatch] = []
    info: Any = reader.metadata or {}
    want = {**lot_metadata(report, lang), "/Author": report.organisation.name}
    for key, value in want.items():
        got = info.get(key)
        if got is not None and str(got) != value:
            out.append(
                PageMismatch(
                    f"metadata.{key[1:].lower()}", f"is {str(got)[:120]!r}, the report says {value!r}"
                )
            )
    return out
