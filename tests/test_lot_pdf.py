"""The lot report's PDF: every device and drive, the impact with its sources, the QR code, both languages."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from certs.keys import init_org_key
from certs.lotpage import kg
from certs.lotpdf import LOT_ATTACHMENT, check_lot_page, render_lot_report
from certs.lotreport import LotReport, sign_lot_report
from certs.pdf import pdf_text
from tests.english import context, english_left
from tests.fixtures.certs import lots

needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qpdf", "pdftoppm", "zbarimg")),
    reason="needs qpdf, poppler-utils and zbar-tools (./dev installs them)",
)


def _lot() -> LotReport:
    """Every case a page shows: reused (each beneficiary), sold, recycled, destroyed, no outcome yet,
    a failed drive destroyed, a drive without proof, a device without drive, several kinds."""
    devices = (
        lots.device(1),
        lots.device(2, "phone", detail="student"),
        lots.device(3, "tablet", detail="job_seeker"),
        lots.device(4, "desktop", outcome="sold", detail="tarif solidaire B"),
        lots.device(5, outcome="recycled", drives=(lots.drive(5, result="failed", destroyed=True),)),
        lots.device(
            6, "server", outcome="destroyed", drives=(lots.drive(6), lots.drive(7, result="interrupted"))
        ),
        lots.device(8, outcome=None, verdict=None, drives=(lots.drive(8, result=None),)),
        lots.device(9, "drive", detail="association", drives=(lots.drive(9, level="clear"),)),
        lots.device(10, "phone", outcome=None, drives=()),
    )
    return lots.report(devices)


def _text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", pdf_text(pdf))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_device_drive_and_proof_is_on_the_page(lang: str) -> None:
    r = _lot()
    pdf = render_lot_report(r, lang)
    text = _text(pdf)
    assert check_lot_page(pdf, r) == []
    for d in r.devices:
        assert d.asset in text and (d.serial or "") in text
        for drive in d.drives:
            for record_id in (drive.certificate_id, drive.destruction_id):
                if record_id:
                    assert record_id in text
    date = "02/04/2026 10:00:00" if lang == "fr" else "2026-04-02 10:00:00"
    assert text.count(date) == sum(1 for d in r.devices for x in d.drives if x.certificate_id)
    assert "Purge" in text and "Clear" in text and "Destroy" in text
    words = {
        "en": [
            "NO PROOF",
            "no drive in the inventory",
            "reused to student",
            "recycled via Ecosystem (Paris)",
            "sold (solidarity price) (tarif solidaire B)",
            "job seeker",
            "still open" if r.lot.closed is None else "2026-04-30",
        ],
        "fr": [
            "AUCUNE PREUVE",
            "aucun disque à l'inventaire",
            "réemployé pour étudiant",
            "recyclé par Ecosystem (Paris)",
            "vendu (prix solidaire) (tarif solidaire B)",
            "demandeur d'emploi",
            "30/04/2026",
        ],
    }[lang]
    for w in words:
        assert w in text, w


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_impact_and_its_sources_are_on_the_page(lang: str) -> None:
    r = _lot()
    impact = r.impact.impact
    # reused: laptop, phone, tablet, drive -> only the sourced figures count
    assert impact.devices == 4 and impact.co2e_g == 27_000 + 24_600 and impact.waste_g == 314
    text = _text(render_lot_report(r, lang))
    assert f"{kg(impact.co2e_g, lang)} CO2e" in text and kg(impact.waste_g, lang) in text
    assert ("51,6 kg" if lang == "fr" else "51.6 kg") in text
    assert r.impact.table in text
    for citation in r.impact.citations:
        assert re.sub(r"\s+", "", citation) in re.sub(r"\s+", "", text)
    assert "0 kg*" in text  # placeholders are marked


def test_the_french_pdf_holds_no_english() -> None:
    r = _lot()
    text = pdf_text(render_lot_report(r, "fr"))
    # what stays as signed: the fixture's names, makes and models, the study's publishers
    for name in ("Samsung SSD 860 EVO 250GB", "ThinkPad T480", "EFL consulting", "Bureau Veritas"):
        text = text.replace(name, "")
    left = english_left(text)
    assert left == [], [context(text, w) for w in left]
    english = pdf_text(render_lot_report(r, "en"))
    assert english_left(english) != []  # the detector does see English


@needs_tools
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_qr_code_reads_the_donor_page_with_zbar(lang: str, tmp_path: Path) -> None:
    r = _lot()
    pdf = tmp_path / "lot.pdf"
    pdf.write_bytes(render_lot_report(r, lang))
    run = subprocess.run(
        ["pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "p")],
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0
    (png,) = tmp_path.glob("p*.png")
    zbar = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, timeout=60)
    assert zbar.returncode == 0 and zbar.stdout.decode().strip() == r.donor_page


def test_without_a_donor_page_there_is_no_qr_code() -> None:
    r = lots.report(donor_page=None)
    pdf = render_lot_report(r, "en")
    assert check_lot_page(pdf, r) == []
    # the page of a report with a donor page does not pass for one without
    assert any(m.field == "qr_code" for m in check_lot_page(render_lot_report(lots.report(), "en"), r))


@needs_tools
def test_the_signed_report_is_the_pdfs_one_attachment(tmp_path: Path) -> None:
    org = init_org_key(tmp_path / "org", "Atelier Réemploi")
    r = lots.report(kid=org.kid)
    signed = sign_lot_report(r, org)
    pdf = tmp_path / "lot.pdf"
    pdf.write_bytes(render_lot_report(r, "fr", signed=signed))
    assert PdfReader(pdf).attachments == {LOT_ATTACHMENT: [signed]}
    shown = subprocess.run(
        ["qpdf", f"--show-attachment={LOT_ATTACHMENT}", str(pdf)], capture_output=True, timeout=60
    )
    assert shown.stdout == signed
    info = PdfReader(pdf).metadata
    assert info is not None and info["/TabulaLotReportId"] == r.report_id


def test_a_long_lot_spans_pages_and_still_compares() -> None:
    devices = tuple(lots.device(n, drives=(lots.drive(2 * n), lots.drive(2 * n + 1))) for n in range(1, 121))
    r = lots.report(devices)
    pdf = render_lot_report(r, "fr")
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 3
    assert check_lot_page(pdf, r) == []
