"""``station verify`` on a lot report: its signer, its records in a folder or in the hub's log, its PDF."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from certs.cli import main
from certs.issue import IssuedCertificate, IssuedDestruction, issue_destruction
from certs.keys import SigningKey, load_org_key
from certs.lotcheck import check_records, verify_lot_file
from certs.lotpdf import render_lot_report
from certs.lotreport import LotReport, sign_lot_report
from certs.trust import TrustStore
from tests.fixtures.certs import lots, records
from tests.fixtures.certs.helpers import SETTINGS, Station, make_station
from tests.fixtures.certs.logkit import LogKit


@dataclass
class Lot:
    station: Station
    org: SigningKey
    certs: list[IssuedCertificate]
    failed: IssuedCertificate
    destroyed: IssuedDestruction
    report: LotReport
    path: Path  # the signed report, outside the certificate folder

    def sign(self, report: LotReport | None = None, name: str = "report.json") -> Path:
        path = self.path.with_name(name)
        path.write_bytes(sign_lot_report(report or self.report, self.org))
        return path

    def trust(self) -> TrustStore:
        return TrustStore.load([self.station.trust_dir])


@pytest.fixture
def lot(tmp_path: Path) -> Lot:
    """A lot of three machines: two erased and verified, one whose erasure failed and was destroyed."""
    st = make_station(tmp_path)
    org = load_org_key(tmp_path / "org")
    certs = [st.issue(records.verified(operator={"asset_number": f"PC-000{n}"})) for n in (1, 2)]
    failed = st.issue(records.failed_bad_ranges(), settings=replace(SETTINGS, asset_number="PC-0003"))
    destroyed = issue_destruction(
        records.failed_bad_ranges(),
        key_dir=st.key_dir,
        cert_dir=st.cert_dir,
        method="shred",
        performed_by="Camille Martin",
        settings=replace(SETTINGS, asset_number="PC-0003"),
        report=(failed.certificate_id, failed.digest),
    )
    devices = (
        lots.device(1, drives=(lots.drive_of(certs[0]),)),
        lots.device(2, "desktop", outcome="sold", drives=(lots.drive_of(certs[1]),)),
        lots.device(3, outcome="recycled", drives=(lots.drive_of(failed, destroyed),)),
    )
    report = lots.today_report(devices, org.kid)
    out = tmp_path / "out"
    out.mkdir()
    path = out / "report.json"
    path.write_bytes(sign_lot_report(report, org))
    return Lot(st, org, certs, failed, destroyed, report, path)


def _verify(*args: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["verify", *map(str, args), "--json"])
    doc = json.loads(capsys.readouterr().out)
    return code, doc


def test_a_lot_report_verifies_with_its_records(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _verify(
        lot.path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    assert code == 0, doc["lot_reports"][0]["problems"]
    (v,) = doc["lot_reports"]
    assert v["ok"] and v["kind"] == "lot_report" and v["records_checked"]
    assert [(r["kind"], r["found_in"], r["ok"]) for r in v["records"]] == [
        ("certificate", "folder", True),
        ("certificate", "folder", True),
        ("certificate", "folder", True),  # the failure report, listed as failed
        ("destruction", "folder", True),
    ]
    assert v["counts"]["data_cleared"] == 3 and v["impact"]["co2e_g"] == 27_000
    assert doc["results"] == [] and doc["ok"]
    # the human output
    assert (
        main(
            [
                "verify",
                str(lot.path),
                "--certs",
                str(lot.station.cert_dir),
                "--trust",
                str(lot.station.trust_dir),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("OK    ") and "4/4 listed record(s) found and matching" in out


def test_without_a_folder_the_signature_is_checked_and_the_records_are_not(
    lot: Lot, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _verify(lot.path, "--trust", lot.station.trust_dir, capsys=capsys)
    (v,) = doc["lot_reports"]
    assert code == 0 and not v["records_checked"] and "were not checked" in v["notes"][0]


def test_a_missing_record_fails(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    gone = lot.certs[1].json_path
    gone.unlink()
    lot.certs[1].pdf_path.unlink()
    code, doc = _verify(
        lot.path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    (v,) = doc["lot_reports"]
    assert code == 1 and v["reason"] == "record_missing"
    assert [r["ok"] for r in v["records"]] == [True, False, True, True]
    assert "PC-0002" in v["problems"][0]["message"]


def test_the_pdf_of_a_record_counts_as_the_record(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    lot.certs[0].json_path.unlink()  # the PDF embeds the same signed record
    code, doc = _verify(
        lot.path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    assert code == 0, doc["lot_reports"][0]["problems"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": "purge"}, "level"),
        ({"date": "2026-01-01T00:00:00Z"}, "date"),
        ({"serial": "OTHER-SERIAL"}, "serial"),
    ],
)
def test_a_report_that_says_otherwise_than_its_record_fails(
    lot: Lot, change: dict[str, str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d0 = lot.report.devices[0]
    edited = replace(d0, drives=(replace(d0.drives[0], **change),))  # type: ignore[arg-type]
    path = lot.sign(lots.with_devices(lot.report, (edited, *lot.report.devices[1:])), "edited.json")
    code, doc = _verify(
        path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    (v,) = doc["lot_reports"]
    assert code == 1 and v["reason"] == "record_mismatch" and field in v["problems"][0]["message"]


def test_a_record_listed_with_another_hash_or_asset_fails(
    lot: Lot, capsys: pytest.CaptureFixture[str]
) -> None:
    d0 = lot.report.devices[0]
    other_hash = replace(d0, drives=(replace(d0.drives[0], certificate_sha256="0" * 64),))
    path = lot.sign(lots.with_devices(lot.report, (other_hash, *lot.report.devices[1:])), "hash.json")
    code, doc = _verify(
        path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    assert code == 1 and doc["lot_reports"][0]["reason"] == "record_mismatch"
    # the certificate says PC-0001; the report says another asset number for that device
    moved = replace(d0, asset="PC-9999")
    path = lot.sign(lots.with_devices(lot.report, (moved, *lot.report.devices[1:])), "asset.json")
    code, doc = _verify(
        path, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys
    )
    assert code == 1 and "asset number" in doc["lot_reports"][0]["problems"][0]["message"]


def test_a_record_that_does_not_verify_fails(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    # the folder's certificates are trusted through the organisation key; remove it: nothing verifies
    other = lot.path.parent / "other-trust"
    other.mkdir()
    (other / "org.pem").write_bytes(lot.org.public_file().encode())
    edited = json.loads(lot.certs[0].json_path.read_bytes())
    edited["signature"] = edited["signature"][:-4] + (
        "AAAA" if not edited["signature"].endswith("AAAA") else "BBBB"
    )
    lot.certs[0].json_path.write_text(json.dumps(edited))
    lot.certs[0].pdf_path.unlink()
    code, doc = _verify(lot.path, "--certs", lot.station.cert_dir, "--trust", other, capsys=capsys)
    (v,) = doc["lot_reports"]
    assert code == 1 and v["records"][0]["reason"] == "record_invalid"
    assert "bad_signature" in v["records"][0]["message"]


def test_records_proven_in_the_hubs_log(lot: Lot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kit = LogKit()
    for c in (*lot.certs, lot.failed):
        kit.add(c.digest, c.certificate_id)
    kit.add(lot.destroyed.digest, lot.destroyed.record_id)
    key = kit.write_key(tmp_path / "hub-log.pem")
    empty = tmp_path / "empty"
    empty.mkdir()
    proofs = []
    for c in (*lot.certs, lot.failed):
        proofs.append(kit.write_sidecar(empty / f"{c.certificate_id}.json", c.digest))
    # the destruction record's proof is given explicitly
    proof = tmp_path / "destruction-proof.json"
    proof.write_text(json.dumps(kit.proof(lot.destroyed.digest)))
    args = [lot.path, "--certs", empty, "--log", key, "--log-proof", proof, "--trust", lot.station.trust_dir]
    code, doc = _verify(*args, capsys=capsys)
    (v,) = doc["lot_reports"]
    assert code == 0, v["problems"]
    assert {r["found_in"] for r in v["records"]} == {"log"} and "hash only" in v["notes"][-1]
    assert doc["files"] == []  # the explicit proof went to the lot report's record
    # a proof that does not lead to the signed root
    bad = kit.proof(lot.certs[0].digest)
    bad["inclusion"][0] = "00" * 32
    proofs[0].write_text(json.dumps(bad))
    code, doc = _verify(*args, capsys=capsys)
    assert code == 1 and doc["lot_reports"][0]["reason"] == "proof_invalid"
    proofs[0].unlink()
    code, doc = _verify(*args, capsys=capsys)
    assert code == 1 and doc["lot_reports"][0]["reason"] == "log_proof_missing"


def test_certs_without_a_lot_report_is_a_usage_error(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _verify(lot.certs[0].json_path, "--certs", lot.station.cert_dir, capsys=capsys)
    assert code == 2 and doc["error"]["reason"] == "usage"


def test_a_lot_report_and_certificates_together(lot: Lot, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _verify(lot.path, lot.certs[0].json_path, "--trust", lot.station.trust_dir, capsys=capsys)
    assert code == 0 and doc["valid"] == 1 and doc["lot_reports"][0]["ok"]


def test_a_lot_report_signed_by_an_unknown_key_fails(
    lot: Lot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "no-trust"
    empty.mkdir()
    code, doc = _verify(lot.path, "--trust", empty, capsys=capsys)
    assert code == 1 and doc["lot_reports"][0]["reason"] == "unknown_key"


# --- the PDF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_pdf_verifies_alone_and_against_the_folder(
    lot: Lot, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = sign_lot_report(lot.report, lot.org)
    pdf = lot.path.with_suffix(".pdf")
    pdf.write_bytes(render_lot_report(lot.report, lang, signed=signed))
    v = verify_lot_file(pdf, lot.trust())
    assert v.ok, v.problems
    check_records(v, lot.trust(), [lot.station.cert_dir])
    assert v.ok and len(v.records) == 4
    code, doc = _verify(pdf, "--certs", lot.station.cert_dir, "--trust", lot.station.trust_dir, capsys=capsys)
    assert code == 0 and doc["lot_reports"][0]["ok"]


def test_an_edited_pdf_page_is_a_page_mismatch(lot: Lot) -> None:
    signed = sign_lot_report(lot.report, lot.org)
    # the page of another report (another donor) around this report's signed file
    other = replace(lot.report, lot=replace(lot.report.lot, donor_name="Somebody Else"))
    pdf = lot.path.with_suffix(".pdf")
    pdf.write_bytes(render_lot_report(other, "fr", signed=signed))
    v = verify_lot_file(pdf, lot.trust())
    assert v.reason == "page_mismatch" and "lot.donor" in v.problems[0][1]
    # another donor page in the QR code
    moved = replace(lot.report, donor_page="https://evil.example/donor/x")
    pdf.write_bytes(render_lot_report(moved, "en", signed=signed))
    v = verify_lot_file(pdf, lot.trust())
    assert any(p[1].startswith("qr_code") for p in v.problems)


def test_a_pdf_without_the_signed_report_is_not_a_lot_report(
    lot: Lot, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = lot.path.with_suffix(".pdf")
    pdf.write_bytes(render_lot_report(lot.report, "en"))
    code, doc = _verify(pdf, "--trust", lot.station.trust_dir, capsys=capsys)
    assert code == 1 and doc["lot_reports"] == [] and doc["results"][0]["reason"] == "pdf_error"
    shutil.rmtree(lot.station.cert_dir)


def test_lot_reports_met_in_folders_are_verified_as_lot_reports(
    lot: Lot, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = sign_lot_report(lot.report, lot.org)
    (lot.station.cert_dir / "lot.lot-report.json").write_bytes(signed)
    (lot.station.cert_dir / "lot.lot-report.pdf").write_bytes(
        render_lot_report(lot.report, "fr", signed=signed)
    )
    for extra in ([], ["--certs", str(lot.station.cert_dir)]):
        code, doc = _verify(
            lot.station.cert_dir, *extra, "--trust", lot.station.trust_dir, "--chain", capsys=capsys
        )
        names = sorted(Path(v["path"]).name for v in doc["lot_reports"])
        assert names == ["lot.lot-report.json", "lot.lot-report.pdf"]
        assert all(v["ok"] and v["records_checked"] == bool(extra) for v in doc["lot_reports"])
        assert doc["checked"] == 2 * 4  # every record's JSON and PDF, and nothing else
        # the folder holds the failure report (its JSON and PDF): that alone makes the exit status 1
        failing = {r["reason"] for r in doc["results"] if not r["valid"]}
        assert code == 1 and failing == {"failure_report"}
