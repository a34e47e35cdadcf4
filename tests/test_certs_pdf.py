"""PDF certificates: extractable text in English and French, the failure banner, the embedded record."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ContentStream, NameObject
from reportlab.lib.pagesizes import A4

from certs.errors import QrError
from certs.pdf import ATTACHMENT, extract_signed, pdf_text, qr_payload
from certs.pdfcheck import qr_matrix
from certs.qr import decode
from certs.verify import Verdict
from erase.model import Pattern
from erase.record import JobRecord, PassRecord
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, Station, make_station


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    return make_station(tmp_path_factory.mktemp("pdf"))


def flat(text: str) -> str:
    """pypdf breaks lines inside table cells; compare on single-spaced text."""
    return re.sub(r"\s+", " ", text)


def test_english_certificate_text(station: Station) -> None:
    issued = station.issue(records.verified(), lang="en")
    data = issued.pdf_path.read_bytes()
    reader = PdfReader(io.BytesIO(data))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (round(A4[0]), round(A4[1]))
    text = flat(pdf_text(data))
    for expected in (
        "Atelier Réemploi",
        "Certificate of Sanitization",
        "ERASED AND VERIFIED",
        "Person performing sanitization",
        "Camille Martin",
        "WD-WCC4N1234567",
        "WDC WD5000AAKX-08U6AA0",
        "PC-2024-0173",
        "Mairie de Villeurbanne",
        "Clear",
        "clear / clear",
        "dod-short",
        "tabula 0.1.0",
        "full read-back of the last pass",
        "[X] External reuse",
        "not checked / not checked",
        issued.certificate_id,
        issued.digest,
        "Validation",
        "Signature",
    ):
        assert expected in text, expected
    assert "NOT ERASED" not in text


def test_french_certificate_text(station: Station) -> None:
    issued = station.issue(records.verified(mode="sample"), lang="fr")
    text = flat(pdf_text(issued.pdf_path.read_bytes()))
    for expected in (
        "Certificat d'effacement",
        "EFFACÉ ET VÉRIFIÉ",
        "Personne ayant effectué l'effacement",
        "Numéro de série",
        "Destination du support",
        "[X] Réemploi externe",
        "Graine",
        records.SEED,
        "non vérifiées / non vérifiées",
    ):
        assert expected in text, expected


@pytest.mark.parametrize("name", ["failed_bad_ranges", "failed_verification", "interrupted"])
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_failure_pdf_says_not_erased(station: Station, name: str, lang: str) -> None:
    issued = station.issue(records.ALL_FAILURES[name](), lang=lang)
    text = flat(pdf_text(issued.pdf_path.read_bytes()))
    assert "NOT ERASED / ÉCHEC" in text
    assert "ERASED AND VERIFIED" not in text and "EFFACÉ ET VÉRIFIÉ" not in text
    assert "Certificate of Sanitization" not in text and "Certificat d'effacement" not in text
    reason = issued.certificate.result.reasons[0]
    assert flat(reason) in text


def test_unverified_pdf_is_not_a_certificate(station: Station) -> None:
    issued = station.issue(records.unverified())
    text = flat(pdf_text(issued.pdf_path.read_bytes()))
    assert "NOT VERIFIED / NON VÉRIFIÉ" in text and "NOT ERASED" in text
    assert "ERASED AND VERIFIED" not in text


def test_bad_ranges_are_printed(station: Station) -> None:
    issued = station.issue(records.failed_bad_ranges())
    text = flat(pdf_text(issued.pdf_path.read_bytes()))
    assert f"{8 * records.MiB}+4096 (write: EIO)" in text and "(12288 B)" in text


def test_signed_record_embedded_byte_for_byte(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    pdf = issued.pdf_path.read_bytes()
    assert extract_signed(pdf) == issued.json_path.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    assert list(reader.attachments) == [ATTACHMENT]
    assert reader.metadata is not None and reader.metadata["/TabulaSHA256"] == issued.digest
    # the PDF alone verifies (the JSON removed)
    alone = tmp_path / "alone.pdf"
    alone.write_bytes(pdf)
    v = station.verifier().verify_file(alone)
    assert v.ok and v.certificate == issued.certificate


def test_qr_payload() -> None:
    assert qr_payload("id1", "ab" * 32) == f"tabula-cert:id1;sha256={'ab' * 32}"
    assert qr_payload("id1", "cd", "https://x.org/v") == "https://x.org/v?id=id1&sha256=cd"
    assert qr_payload("id1", "cd", "https://x.org/v?lang=fr") == "https://x.org/v?lang=fr&id=id1&sha256=cd"


def test_qr_code_is_drawn_with_the_url(station: Station) -> None:
    """The QR widget encodes the configured URL, id and hash (checked on the drawing, not by a decoder)."""
    from certs.pdf import _qr

    value = qr_payload("00000000-0000-0000-0000-000000000000", "ab" * 32, "https://example.org/verify")
    drawing = _qr(value)
    widget = drawing.contents[0]
    assert widget.value == value
    assert widget.qr.getModuleCount() >= 21  # a real QR matrix was computed


# --- one record per PDF, found the same way by pypdf, qpdf and poppler --------------------------------

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "certs" / "hostile" / "files"
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qpdf", "pdfdetach", "pdftoppm", "zbarimg")),
    reason="needs qpdf, poppler-utils and zbar-tools (./dev installs them)",
)


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, capture_output=True, timeout=60, cwd=cwd)


@needs_tools
def test_pypdf_qpdf_and_poppler_find_the_same_single_record(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    pdf = issued.pdf_path
    signed = issued.json_path.read_bytes()
    assert list(PdfReader(pdf).attachments) == [ATTACHMENT] and PdfReader(pdf).attachments[ATTACHMENT] == [
        signed
    ]
    listed = _run(["qpdf", "--list-attachments", str(pdf)]).stdout.decode()
    assert [line.split(" ->")[0] for line in listed.splitlines() if "->" in line] == [ATTACHMENT]
    assert _run(["qpdf", f"--show-attachment={ATTACHMENT}", str(pdf)]).stdout == signed
    poppler = _run(["pdfdetach", "-list", str(pdf)]).stdout.decode()
    assert poppler.splitlines()[0] == "1 embedded files" and ATTACHMENT in poppler
    assert _run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "out.json"), str(pdf)]).returncode == 0
    assert (tmp_path / "out.json").read_bytes() == signed


@needs_tools
def test_the_dual_record_pdf_is_read_differently_by_each_tool_and_refused(
    station: Station, tmp_path: Path
) -> None:
    """Why the rule exists: pypdf reads /EF/UF (a certificate), poppler /EF/F (a failure report)."""
    pdf = HOSTILE / "dual-f-uf.pdf"
    by_pypdf = PdfReader(pdf).attachments[ATTACHMENT][0]
    assert _run(["pdfdetach", "-save", "1", "-o", str(tmp_path / "p.json"), str(pdf)]).returncode == 0
    by_poppler = (tmp_path / "p.json").read_bytes()
    assert b"failure_report" not in by_pypdf or b"failure_report" not in by_poppler
    assert by_pypdf != by_poppler
    v = station.verifier().verify_file(pdf)
    assert v.reason == "pdf_structure" and "/EF/F and /EF/UF" in v.problems[0][1]


@needs_tools
@pytest.mark.parametrize(
    ("name", "poppler", "qpdf"),
    [
        ("two-attachments.pdf", 2, 2),  # every tool lists both files
        ("annotation-attachment.pdf", 2, 1),  # poppler lists the annotation's file too, qpdf does not
        ("kids-tree.pdf", 1, 1),  # one record, but in a nested name tree: refused all the same
        ("orphan-filespec.pdf", 1, 1),  # a second embedded file no tool lists: refused all the same
    ],
)
def test_pdfs_with_more_than_one_embedded_file_are_refused(
    station: Station, name: str, poppler: int, qpdf: int
) -> None:
    pdf = HOSTILE / name
    listed = _run(["pdfdetach", "-list", str(pdf)]).stdout.decode()
    assert listed.splitlines()[0] == f"{poppler} embedded files"
    assert _run(["qpdf", "--list-attachments", str(pdf)]).stdout.decode().count(" -> ") == qpdf
    v = station.verifier().verify_file(pdf)
    assert v.reason == "pdf_structure", v.problems


# --- the page says what the record says ---------------------------------------------------------------


def _edit_page(pdf: bytes, old: bytes, new: bytes, page: int = 0) -> bytes:
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    contents = w.pages[page].get_contents()
    assert contents is not None
    data = contents.get_data()
    assert old in data, old
    contents.set_data(data.replace(old, new))
    w.pages[page].replace_contents(contents)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _check(station: Station, tmp_path: Path, data: bytes) -> Verdict:
    p = tmp_path / "edited.pdf"
    p.write_bytes(data)
    return station.verifier().verify_file(p)


def test_an_edited_serial_is_named(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    edited = _edit_page(issued.pdf_path.read_bytes(), b"(WD-WCC4N1234567)", b"(WD-WCC4N7654321)")
    v = _check(station, tmp_path, edited)
    assert not v.ok and v.reason == "page_mismatch"
    assert v.mismatched_fields == ["serial"], v.problems
    assert "WD-WCC4N1234567" in v.problems[0][1]
    assert v.to_json()["mismatched_fields"] == ["serial"]


def test_a_failure_report_edited_to_look_erased(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.failed_verification())
    pdf = issued.pdf_path.read_bytes()
    edited = _edit_page(pdf, b"(NOT ERASED / \\311CHEC)", b"(ERASED AND VERIFIED)")
    v = _check(station, tmp_path, edited)
    assert [r for r, _ in v.problems] == ["failure_report", "page_mismatch"] and v.mismatched_fields == [
        "outcome"
    ]


def test_other_fields_and_inserted_text(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    pdf = issued.pdf_path.read_bytes()
    cid = issued.certificate_id.encode()
    cases = {
        b"(PC-2024-0173)": (b"(PC-2024-9999)", "asset_number"),
        b"(clear / clear)": (b"(purge / purge)", "level"),
        b"(Certificate ID: " + cid + b")": (
            b"(Certificate ID: 00000000-0000-0000-0000-000000000000)",
            "certificate_id",
        ),
        b"(ERASED AND VERIFIED)": (b"(ERASED AND VERIFIED) Tj (TWICE)", "page_text"),
    }
    for old, (new, field) in cases.items():
        v = _check(station, tmp_path, _edit_page(pdf, old, new))
        assert field in v.mismatched_fields, (field, v.problems)
    dates = issued.certificate.issued_at.encode()
    v = _check(station, tmp_path, _edit_page(pdf, b"(" + dates + b")", b"(2001-01-01T00:00:00Z)", page=-1))
    assert "issued_at" in v.mismatched_fields, v.problems


def test_an_appended_page_is_extra_text(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    forged = station.issue(records.verified(), lang="fr")
    w = PdfWriter(clone_from=PdfReader(issued.pdf_path))
    w.add_page(PdfReader(forged.pdf_path).pages[0])
    out = io.BytesIO()
    w.write(out)
    v = _check(station, tmp_path, out.getvalue())
    assert v.mismatched_fields == ["page_text"], v.problems


def test_metadata_is_compared(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.failed_verification())
    w = PdfWriter(clone_from=PdfReader(issued.pdf_path))
    w.add_metadata({"/Title": "Certificate of Sanitization " + issued.certificate_id, "/Keywords": "erased"})
    out = io.BytesIO()
    w.write(out)
    v = _check(station, tmp_path, out.getvalue())
    assert set(v.mismatched_fields) == {"metadata.title", "metadata.keywords"}, v.problems
    w = PdfWriter(clone_from=PdfReader(issued.pdf_path))
    w.add_metadata({"/Title": ""})
    del w._info[NameObject("/Title")]  # absent metadata is fine: tools strip it
    w.xmp_metadata = None
    out = io.BytesIO()
    w.write(out)
    assert _check(station, tmp_path, out.getvalue()).mismatched_fields == []


# --- the QR code ---------------------------------------------------------------------------------------


@needs_tools
def test_the_drawn_qr_code_reads_the_same_with_zbar(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    v = station.verifier().verify_file(issued.pdf_path)
    reader = PdfReader(issued.pdf_path)
    ours = decode(qr_matrix(ContentStream(reader.pages[0].get_contents(), reader)))
    assert ours == qr_payload(issued.certificate_id, issued.digest, SETTINGS.verification_url)
    assert any(ours in n for n in v.notes)
    assert (
        _run(
            ["pdftoppm", "-r", "200", "-f", "1", "-l", "1", "-png", str(issued.pdf_path), str(tmp_path / "p")]
        ).returncode
        == 0
    )
    (png,) = tmp_path.glob("p*.png")
    zbar = _run(["zbarimg", "--raw", "-q", str(png)])
    assert zbar.returncode == 0 and zbar.stdout.decode().strip() == ours


def test_an_edited_qr_code_is_named(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    pdf = issued.pdf_path.read_bytes()
    reader = PdfReader(io.BytesIO(pdf))
    content = reader.pages[0].get_contents()
    assert content is not None
    first_module = re.search(rb"n ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re f\*", content.get_data())
    assert first_module is not None
    v = _check(
        station, tmp_path, _edit_page(pdf, first_module.group(0), b"n 0 0 0 0 re n")
    )  # one module less
    assert v.mismatched_fields == ["qr_code"], v.problems
    # a QR code for another record, drawn in place of this one
    other = station.issue(records.verified())
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    other_page = PdfReader(other.pdf_path).pages[0].get_contents()
    assert other_page is not None
    ours, theirs = content.get_data(), other_page.get_data()
    qr_ours = ours[ours.index(b"n 0 0 90.70866 90.70866 re n") :]
    qr_theirs = theirs[theirs.index(b"n 0 0 90.70866 90.70866 re n") :]
    qr_ours = qr_ours[: qr_ours.index(b"BT")]
    qr_theirs = qr_theirs[: qr_theirs.index(b"BT")]
    page = w.pages[0].get_contents()
    assert page is not None
    page.set_data(ours.replace(qr_ours, qr_theirs))
    w.pages[0].replace_contents(page)
    out = io.BytesIO()
    w.write(out)
    v = _check(station, tmp_path, out.getvalue())
    assert v.mismatched_fields == ["qr_code"] and "not this record" in v.problems[0][1]


def test_qr_decoder_is_strict() -> None:
    from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel

    q = QRCode(None, QRErrorCorrectLevel.L)
    q.addData("https://example.org/verify?id=1&sha256=" + "ab" * 32)
    q.make()
    m = [[bool(x) for x in row] for row in q.modules]
    assert decode(m).startswith("https://example.org/verify?id=1&")
    n = len(m)
    flipped = [row[:] for row in m]
    flipped[n - 1][n - 1] = not flipped[n - 1][n - 1]  # one data module: a phone would correct it
    with pytest.raises(QrError, match="error-free"):
        decode(flipped)
    other = [row[:] for row in m]
    other[8][n - 1] = not other[8][n - 1]  # the two format copies disagree
    with pytest.raises(QrError, match="format"):
        decode(other)
    with pytest.raises(QrError, match="size"):
        decode([[False] * 20 for _ in range(20)])


# --- pages that are hard to read back ------------------------------------------------------------------


def test_awkward_text_and_long_tables_still_match(station: Station, tmp_path: Path) -> None:
    """Characters the fonts cannot draw, control characters, bidi marks, and tables split over pages."""
    settings = dataclasses.replace(
        SETTINGS,
        technician="Łukasz 🙂 中文 \u202eevil\u202c",
        organisation="Atelier <Réemploi> & Cie\t\x01",
        destination_details="line\nbreak\u00adsoft hy\u00a0phen " + "word" * 60,
    )
    health = {f"attribute_{i:03d}": f"value {i} " + "x" * (i % 40) for i in range(90)}
    issued = station.issue(records.verified(), settings=settings, health=health)
    assert len(PdfReader(issued.pdf_path).pages) >= 3
    v = station.verifier().verify_file(issued.pdf_path)
    assert v.ok, v.problems
    many = station.issue(_many_passes(60))
    assert len(PdfReader(many.pdf_path).pages) >= 2
    text = pdf_text(many.pdf_path.read_bytes())
    assert text.count("Technique / pattern") >= 2  # the steps table's header repeats on the next page
    v = station.verifier().verify_file(many.pdf_path)
    assert v.ok, v.problems


def _many_passes(n: int) -> JobRecord:
    base = records.verified()
    patterns = tuple(Pattern(kind="bytes", hex=f"{i % 256:02x}", label=f"p{i}") for i in range(n))
    plan = dataclasses.replace(base.plan, passes=patterns, method="custom")
    passes = tuple(
        PassRecord(
            index=i,
            pattern=p,
            bytes_total=records.SIZE,
            bytes_written=records.SIZE,
            started_at=f"2025-03-01T10:{i:02d}:00+00:00",
            finished_at=f"2025-03-01T10:{i:02d}:30+00:00",
            completed=True,
        )
        for i, p in enumerate(patterns)
    )
    return dataclasses.replace(
        base, plan=plan, passes=passes, verifications=(records._check(n - 1, records.SIZE),)
    )
