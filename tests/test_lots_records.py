"""The donation lot in signed records: certificates, destruction records and diagnostics reports.

A lot reference is signed next to the asset number (``media.lot``), validated on construction with the
shared rule (host/refs.py); records of the formats before lots (``tabula.certificate/1``,
``tabula.destruction/1``) keep verifying, and a changed lot breaks the signature.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from certs import destruction as destruction_model
from certs import model
from certs.build import build_certificate
from certs.canonical import b64url_encode, canonical_json
from certs.errors import InvalidCertificate, SchemaError
from certs.issue import issue_destruction
from certs.label import label_lines
from certs.pdf import pdf_text
from diagnostics.diagnose import REPORT_SCHEMA, DiagnosticReport
from host import refs
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, Station, make_station, payload_of, resign

LOT = "LOT-2026-03"


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


@pytest.mark.parametrize("ref", ["LOT-2026-03", "a", "mairie/2026.03_B", "x" * 64, "Lot-Mixed-Case"])
def test_lot_references_the_rule_accepts(ref: str) -> None:
    assert refs.check_lot(ref) == ref
    assert refs.lot_problem(ref) is None


@pytest.mark.parametrize(
    "ref, words",
    [
        ("", "empty"),
        ("x" * 65, "65 characters long; at most 64"),
        ("LOT 2026", "not ' '"),
        ("LOT-2026\n", "not '\\n'"),
        ("lot#3", "not '#'"),
        ("été", "not 'é'"),
    ],
)
def test_lot_references_the_rule_refuses_and_says_why(ref: str, words: str) -> None:
    with pytest.raises(refs.BadReference) as e:
        refs.check_lot(ref)
    assert words in e.value.message and e.value.hint
    with pytest.raises(InvalidCertificate):
        model.Media(**{**_media_fields(), "lot": ref})


def _media_fields() -> dict[str, Any]:
    cert = model.Certificate.from_dict(_payload_v2())
    return {f.name: getattr(cert.media, f.name) for f in dataclasses.fields(cert.media)}


def _payload_v2() -> dict[str, Any]:
    st = model.Station(id="bench-1", kid="ab" * 32, sequence=1, previous=None)
    cert = build_certificate(records.verified(operator={"lot": LOT}), settings=SETTINGS, station=st)
    return cert.to_dict()


def test_a_certificate_signs_the_lot_next_to_the_asset_number(station: Station) -> None:
    issued = station.issue(records.verified(operator={"lot": LOT, "asset_number": "PC-7"}), lang="fr")
    payload = payload_of(issued.json_path)
    assert payload["schema"] == "tabula.certificate/2"
    assert payload["media"]["lot"] == LOT and payload["media"]["asset_number"] == "PC-7"
    verdict = station.verifier().verify_paths([issued.json_path, issued.pdf_path])
    assert [v.ok for v in verdict] == [True, True], [v.problems for v in verdict]
    assert verdict[0].certificate is not None and verdict[0].certificate.media.lot == LOT
    assert verdict[0].to_json()["lot"] == LOT and verdict[0].to_json()["asset_number"] == "PC-7"
    text = pdf_text(issued.pdf_path.read_bytes())
    assert "Lot de don" in text and LOT in text
    assert f"Lot: {LOT}" in " ".join(label_lines(issued.certificate, "fr")[2])


def test_without_a_lot_the_payload_says_null_and_the_page_has_no_lot_row(station: Station) -> None:
    issued = station.issue(records.verified(), lang="en")
    assert payload_of(issued.json_path)["media"]["lot"] is None
    assert "Donation lot" not in pdf_text(issued.pdf_path.read_bytes())
    assert station.verifier().verify_file(issued.pdf_path).ok


def test_a_tampered_lot_breaks_the_signature_and_a_bad_one_the_schema(station: Station) -> None:
    issued = station.issue(records.verified(operator={"lot": LOT}))
    obj = json.loads(issued.json_path.read_bytes())
    payload = payload_of(issued.json_path)
    payload["media"]["lot"] = "LOT-2026-04"  # moved to another donor's lot after signing
    obj["payload"] = b64url_encode(canonical_json(payload))
    issued.json_path.write_text(json.dumps(obj))
    v = station.verifier().verify_file(issued.json_path)
    assert not v.valid and v.reason == "bad_signature"
    payload["media"]["lot"] = "LOT 2026"  # signed by the station, but not a lot reference
    issued.json_path.write_text(json.dumps(resign(obj, canonical_json(payload), station.key_dir)))
    v = station.verifier().verify_file(issued.json_path)
    assert not v.valid and v.reason == "schema_error"


def _as_v1(station: Station, path: Path, schema: str, *, keep_lot: bool = False, url: bool = True) -> None:
    """Re-sign the record as the first format wrote it: schema /1, no ``media.lot`` (and, as before the
    QR code's link was signed, no ``verification_url`` unless ``url``)."""
    obj = json.loads(path.read_bytes())
    payload = payload_of(path)
    payload["schema"] = schema
    if not keep_lot:
        del payload["media"]["lot"]
    if not url:
        del payload["verification_url"]
    path.write_text(json.dumps(resign(obj, canonical_json(payload), station.key_dir)))


@pytest.mark.parametrize("url", [True, False])
def test_a_certificate_from_before_lots_still_verifies(station: Station, url: bool) -> None:
    issued = station.issue(records.verified())
    _as_v1(station, issued.json_path, model.SCHEMA_V1, url=url)
    v = station.verifier().verify_file(issued.json_path)
    assert v.ok, v.problems
    assert v.certificate is not None and v.certificate.schema == model.SCHEMA_V1
    assert v.certificate.media.lot is None
    # read back, it is written as it was signed: no lot key in the /1 payload
    assert "lot" not in v.certificate.to_dict()["media"]
    assert canonical_json(v.certificate.to_dict()) == canonical_json(payload_of(issued.json_path))


def test_a_v1_certificate_cannot_carry_a_lot(station: Station) -> None:
    issued = station.issue(records.verified(operator={"lot": LOT}))
    _as_v1(station, issued.json_path, model.SCHEMA_V1, keep_lot=True)
    v = station.verifier().verify_file(issued.json_path)
    assert not v.valid and v.reason == "schema_error" and "unknown field(s) lot" in str(v.problems)
    with pytest.raises(SchemaError):
        model.Certificate.from_dict({**_payload_v2(), "schema": model.SCHEMA_V1})


@pytest.mark.parametrize("key", ["lot", "verification_url"])
def test_a_v2_payload_says_lot_and_link_even_when_null(key: str) -> None:
    payload = _payload_v2()
    del (payload["media"] if key == "lot" else payload)[key]
    with pytest.raises(SchemaError, match=f"missing field.*{key}"):
        model.Certificate.from_dict(payload)


def test_a_destruction_record_carries_the_lot_and_the_bench_can_correct_it(station: Station) -> None:
    failed = records.failed_bad_ranges()
    failed = dataclasses.replace(failed, plan=dataclasses.replace(failed.plan, operator={"lot": LOT}))
    d = issue_destruction(
        failed,
        key_dir=station.key_dir,
        cert_dir=station.cert_dir,
        method="shred",
        performed_by="Camille Martin",
        settings=SETTINGS,
        asset_number="PC-9",
        lang="fr",
    )
    payload = payload_of(d.json_path)
    assert payload["schema"] == destruction_model.SCHEMA
    assert payload["media"]["lot"] == LOT and payload["media"]["asset_number"] == "PC-9"
    assert "Lot de don" in pdf_text(d.pdf_path.read_bytes())
    v = station.verifier().verify_file(d.pdf_path)
    assert v.valid and not v.ok and v.destruction is not None and v.problems == [], v.problems
    d2 = issue_destruction(
        failed,
        key_dir=station.key_dir,
        cert_dir=station.cert_dir,
        method="crush",
        performed_by="Camille Martin",
        settings=SETTINGS,
        lot="LOT-2026-04",
    )
    assert payload_of(d2.json_path)["media"]["lot"] == "LOT-2026-04"
    with pytest.raises(InvalidCertificate):
        issue_destruction(
            failed,
            key_dir=station.key_dir,
            cert_dir=station.cert_dir,
            method="crush",
            performed_by="Camille Martin",
            settings=SETTINGS,
            lot="lot #4",
        )


@pytest.mark.parametrize("url", [True, False])
def test_a_destruction_record_from_before_lots_still_verifies(station: Station, url: bool) -> None:
    d = issue_destruction(
        records.failed_bad_ranges(),
        key_dir=station.key_dir,
        cert_dir=station.cert_dir,
        method="drill",
        performed_by="Camille Martin",
        settings=SETTINGS,
    )
    _as_v1(station, d.json_path, destruction_model.SCHEMA_V1, url=url)
    v = station.verifier().verify_file(d.json_path)
    assert v.valid and v.destruction is not None and v.problems == [], v.problems
    assert v.destruction.schema == destruction_model.SCHEMA_V1 and v.destruction.media.lot is None
    obj = json.loads(d.json_path.read_bytes())
    payload = payload_of(d.json_path)
    payload["media"]["lot"] = None  # a key the first format did not have, even null
    d.json_path.write_text(json.dumps(resign(obj, canonical_json(payload), station.key_dir)))
    v = station.verifier().verify_file(d.json_path)
    assert not v.valid and v.reason == "schema_error"


def test_a_diagnostics_report_carries_lot_and_asset_number_and_checks_them() -> None:
    report = DiagnosticReport(mode="quick", started_at="2026-03-01T10:00:00Z", rules_source="x", lot=LOT)
    d = report.to_dict()
    assert REPORT_SCHEMA == 2 and d["schema"] == 2
    assert d["lot"] == LOT and d["asset_number"] == ""
    with pytest.raises(refs.BadReference, match="letters, digits"):
        DiagnosticReport(mode="quick", started_at="2026-03-01T10:00:00Z", rules_source="x", lot="LOT 1")
    with pytest.raises(refs.BadReference, match="at most 200"):
        DiagnosticReport(mode="quick", started_at="x", rules_source="x", asset_number="9" * 201)


@pytest.mark.parametrize("ref", ["LOT-1\n", "LOT 1", "", "x" * 65])
def test_a_lot_report_holds_the_same_rule(ref: str) -> None:
    """The lot report's lot (certs/lotreport.py) is checked by the shared rule: a trailing newline too."""
    from certs.errors import InvalidLotReport
    from certs.lotreport import Lot

    assert Lot("LOT-1", "Mairie", "public_body", "2026-03-14", None).reference == "LOT-1"
    with pytest.raises(InvalidLotReport):
        Lot(ref, "Mairie", "public_body", "2026-03-14", None)
