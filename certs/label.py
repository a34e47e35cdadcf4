"""A label for the drive (or the machine it came from): QR code, asset number, verdict and date.

A small PDF page (:data:`LABEL_SIZE_MM`, the common 36 x 89 mm address label of Dymo and Brother
printers) the station sends through CUPS.  The QR code holds what the certificate's holds (its id and
the SHA-256 of the signed record, or the verification URL), so a phone finds the certificate from the
drive.  The label is not a certificate: it carries no signed record and ``station verify`` ignores it
(labels are kept apart, in ``$TABULA_HOME/labels``).
"""

from __future__ import annotations

import io

from reportlab.graphics import renderPDF
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from certs.destruction import DestructionRecord
from certs.i18n import labels
from certs.model import Certificate
from certs.page import EDITION, Edition, qr_payload
from certs.pdf import qr_drawing

#: Width and height of the label, in millimetres (landscape).
LABEL_SIZE_MM = (89.0, 36.0)

_VERDICT_COLOURS = {"label_erased": "#1b7f3b", "label_failed": "#b00020", "label_destroyed": "#37474f"}


def label_lines(record: Certificate | DestructionRecord, lang: str) -> tuple[str, str, list[str]]:
    """(verdict label key, verdict text, the other lines) of a record's label, in ``lang``."""
    L = labels(lang)
    E = Edition(EDITION, lang)
    if isinstance(record, DestructionRecord):
        key = "label_destroyed"
        m = record.media
        asset, model, serial, when = m.asset_number, m.model, m.serial, record.destruction.destroyed_at
    else:
        key = "label_erased" if record.success else "label_failed"
        cm = record.media
        asset, model, serial, when = cm.asset_number, cm.model, cm.serial, record.issued_at
    lot = record.media.lot
    lines = [
        f"{L['label_asset']}: {asset or '-'}" + (f"  {L['label_lot']}: {lot}" if lot else ""),
        f"{L['label_drive']}: {model or '-'} {serial or ''}".rstrip(),
        f"{L['date']}: {(E.when(when) or '')[:10]}",
        f"Tabula {record.certificate_id[:8]}",
    ]
    return key, L[key], lines


def render_label(
    record: Certificate | DestructionRecord, digest: str, *, lang: str = "en", url: str = ""
) -> bytes:
    """The label as a one-page PDF of :data:`LABEL_SIZE_MM`."""
    width, height = LABEL_SIZE_MM[0] * mm, LABEL_SIZE_MM[1] * mm
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(width, height))
    key, verdict, lines = label_lines(record, lang)
    c.setTitle(f"{verdict} {record.certificate_id}")
    qr_size = height - 4 * mm
    renderPDF.draw(
        qr_drawing(qr_payload(record.certificate_id, digest, record.verification_url or url), qr_size),
        c,
        2 * mm,
        2 * mm,
    )
    x = qr_size + 4 * mm
    c.setFillColor(colors.HexColor(_VERDICT_COLOURS[key]))
    c.setFont("Helvetica-Bold", 11)
    c.drawString(x, height - 8 * mm, verdict[:28])
    c.setFillColor(colors.black)
    c.setFont("Helvetica", 8)
    for i, line in enumerate(lines):
        c.drawString(x, height - (14 + 5 * i) * mm, line[:40])
    c.showPage()
    c.save()
    return buf.getvalue()
