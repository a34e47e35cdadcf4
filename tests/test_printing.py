"""Printing through CUPS, for real: a private cupsd with a cups-pdf queue prints the certificate and the
label, and the PDFs it produced say what the station sent (read back with poppler's pdftotext)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs.issue import issue_destruction
from certs.label import LABEL_SIZE_MM, label_lines
from host.runner import SubprocessRunner
from station.printing import PrintError, make_label, print_file, read_record
from tests.cups import Printer, available, cups_pdf_printer
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, make_station

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def printer() -> Iterator[Printer]:
    why = available()
    if why is not None:
        pytest.skip(why)
    with cups_pdf_printer() as p:
        yield p


def text_of(pdf: Path) -> str:
    assert shutil.which("pdftotext"), "poppler-utils (./dev installs it)"
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def test_a_certificate_and_its_label_come_out_of_a_cups_pdf_printer(printer: Printer, tmp_path: Path) -> None:
    station = make_station(tmp_path / "station")
    issued = station.issue(records.verified(), lang="fr")
    runner = SubprocessRunner(env=printer.env())
    done = print_file(issued.pdf_path, runner, printer=printer.queue, title="certificat")
    assert done.request.startswith(printer.queue + "-")
    label = make_label(issued.json_path, tmp_path / "home", lang="fr")
    assert label.parent == tmp_path / "home" / "labels"  # never beside the certificates
    print_file(label, runner, printer=printer.queue, title="etiquette", fit=True)
    by_title = {p.name.split("_")[0]: p for p in printer.printed(2)}
    cert_pdf, label_pdf = by_title["certificat"], by_title["etiquette"]
    printed = text_of(cert_pdf)
    assert "EFFACÉ ET VÉRIFIÉ" in printed and issued.certificate_id in printed
    on_label = text_of(label_pdf)
    assert "EFFACÉ ET VÉRIFIÉ" in on_label and "PC-2024-0173" in on_label  # verdict and asset number
    assert issued.certificate_id[:8] in on_label


def test_the_label_is_label_sized_and_its_qr_is_the_certificates(tmp_path: Path) -> None:
    from pypdf import PdfReader

    from certs.page import qr_payload
    from certs.pdfcheck import qr_matrix
    from certs.qr import decode

    station = make_station(tmp_path / "station")
    issued = station.issue(records.verified(), lang="en")
    label = make_label(issued.json_path, tmp_path / "home", lang="en", url="https://example.org/verify")
    page = PdfReader(label).pages[0]
    w, h = float(page.mediabox.width), float(page.mediabox.height)
    assert (round(w / 72 * 25.4), round(h / 72 * 25.4)) == tuple(round(x) for x in LABEL_SIZE_MM)
    content = page.get_contents()
    assert content is not None
    from pypdf.generic import ContentStream

    qr = decode(qr_matrix(ContentStream(content, PdfReader(label))))
    assert qr == qr_payload(issued.certificate_id, issued.digest, "https://example.org/verify")
    record, digest = read_record(issued.json_path)
    key, verdict, lines = label_lines(record, "en")
    assert (key, verdict) == ("label_erased", "ERASED AND VERIFIED") and lines[0] == "Asset: PC-2024-0173"


def test_a_failure_report_and_a_destruction_have_labels_that_say_so(tmp_path: Path) -> None:
    station = make_station(tmp_path / "station")
    failed = records.failed_bad_ranges()
    report = station.issue(failed, lang="fr")
    assert label_lines(read_record(report.json_path)[0], "fr")[1] == "NON EFFACÉ"
    d = issue_destruction(
        failed,
        key_dir=station.key_dir,
        cert_dir=station.cert_dir,
        method="crush",
        performed_by="Camille",
        settings=SETTINGS,
    )
    assert label_lines(read_record(d.json_path)[0], "fr")[1] == "DÉTRUIT"


def test_a_printer_that_does_not_exist_is_a_clear_error(printer: Printer, tmp_path: Path) -> None:
    station = make_station(tmp_path / "station")
    issued = station.issue(records.verified())
    with pytest.raises(PrintError, match="lp could not print"):
        print_file(issued.pdf_path, SubprocessRunner(env=printer.env()), printer="no-such-printer")
