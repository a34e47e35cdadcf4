"""PDF certificates: extractable text in English and French, the failure banner, the embedded record."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4

from certs.pdf import ATTACHMENT, extract_signed, pdf_text, qr_payload
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, make_station


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
