"""The openssl + jq recipe of certs/README.md, extracted from the README and run exactly as written."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certs.canonical import b64url_decode, b64url_encode
from certs.jws import TYP_LOT_REPORT, envelope_bytes, sign
from certs.keys import SigningKey, endorse, export_public, init_org_key, load_org_key, load_station_key
from certs.lotreport import LotReport, Organisation, sign_lot_report
from certs.revocation import revoke
from certs.trust import TrustStore
from tests.fixtures.certs import lots, records
from tests.fixtures.certs.helpers import Station, legacy_form, load_json, make_station, payload_of, resign

README = Path(__file__).resolve().parent.parent / "certs" / "README.md"

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("jq") is None, reason="needs openssl and jq"
)


def blocks() -> list[str]:
    """The recipe's shell blocks, in README order: 1, 2a, 2b, 2c, 3."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Verify with openssl and jq", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(found) == 5, "the README's openssl recipe lost a block"
    return found


def run(
    workdir: Path, cert: Path | bytes, *, org: bool = False, revocations: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the recipe in ``workdir`` (holding pub.pem or org.pem) on ``cert``, as the README says."""
    read, direct, via_org, revoked, verdict = blocks()
    (workdir / "cert.json").write_bytes(cert if isinstance(cert, bytes) else cert.read_bytes())
    steps = (
        [read, via_org, revoked, verdict]
        if org and revocations
        else [read, via_org, verdict]
        if org
        else [read, direct, verdict]
    )
    return subprocess.run(
        ["bash", "-c", "".join(steps)], cwd=workdir, capture_output=True, text=True, timeout=60
    )


def run_recipe(workdir: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    """With the station's key (pub.pem in ``workdir``): used by the end-to-end test too."""
    return run(workdir, cert)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path / "station")


@pytest.fixture
def audit(tmp_path: Path, station: Station) -> Path:
    work = tmp_path / "audit"
    work.mkdir()
    (work / "pub.pem").write_text(export_public(station.key_dir))
    (work / "org.pem").write_bytes((station.trust_dir / "org.pem").read_bytes())
    return work


def verdict_line(r: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in r.stdout.splitlines() if line and "Signature Verified" not in line]
    return lines[0] if lines else ""


def test_openssl_version_is_3() -> None:
    out = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout
    assert re.match(r"OpenSSL [3-9]\.", out), out


@pytest.mark.parametrize("org", [False, True], ids=["station-key", "organisation-key"])
def test_recipe_verifies_a_certificate(station: Station, audit: Path, org: bool) -> None:
    issued = station.issue(records.verified())
    r = run(audit, issued.json_path, org=org)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Signature Verified Successfully") == (2 if org else 1)
    assert verdict_line(r).startswith("certificate: verified, level clear; station bench-1 #1;")
    assert issued.certificate_id in verdict_line(r)
    assert r.stdout.splitlines()[-1] == issued.digest  # openssl's hash of the compact form


@pytest.mark.parametrize("org", [False, True], ids=["station-key", "organisation-key"])
def test_recipe_says_failure_report(station: Station, audit: Path, org: bool) -> None:
    issued = station.issue(records.failed_verification())
    r = run(audit, issued.json_path, org=org)
    assert r.returncode == 0, r.stderr
    assert verdict_line(r).startswith("failure_report: failed, level none;")


def test_recipe_reads_legacy_and_reformatted_files(station: Station, audit: Path) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    legacy = json.dumps(legacy_form(obj, station.key_dir), indent=7).encode()
    r = run(audit, legacy, org=True)
    assert r.returncode == 0 and verdict_line(r).startswith("certificate:"), r.stderr
    for text in (
        json.dumps(obj, separators=(",", ":")),
        json.dumps(obj, indent=1)[::1].replace("\n", "\r\n"),
    ):
        r = run(audit, text.encode(), org=True)
        assert r.returncode == 0 and verdict_line(r).startswith("certificate:"), r.stderr


def _planted(report: dict[str, Any], cert: dict[str, Any]) -> list[bytes]:
    """A signed failure report dressed up as a certificate in every unsigned place."""
    header = report.get("header", {})
    top = json.dumps(report)[:-1]
    return [
        json.dumps({**report, "header": {**header, "kind": "certificate"}}).encode(),
        json.dumps({**report, "kind": "certificate", "result": {"success": True}}).encode(),
        json.dumps(
            {
                **report,
                "header": {
                    "endorsement": cert.get("header", {}).get("endorsement", {}),
                    "payload": cert["payload"],
                },
            }
        ).encode(),
        (top + ', "payload": ' + json.dumps(cert["payload"]) + "}").encode(),  # a second payload member
        (
            top
            + ', "signature": '
            + json.dumps(cert["signature"])
            + ', "payload": '
            + json.dumps(cert["payload"])
            + "}"
        ).encode(),
        json.dumps(
            {
                "protected": report["protected"],
                "payload": report["payload"],
                "signature": report["signature"],
                "header": {"endorsement": {"payload": cert["payload"]}},
            }
        ).encode(),
    ]


@pytest.mark.parametrize("org", [False, True], ids=["station-key", "organisation-key"])
def test_planted_content_never_makes_a_failure_report_a_certificate(
    station: Station, audit: Path, org: bool
) -> None:
    report = load_json(station.issue(records.failed_verification()).json_path)
    cert = load_json(station.issue(records.verified()).json_path)
    for legacy in (False, True):
        base = legacy_form(report, station.key_dir) if legacy else report
        other = legacy_form(cert, station.key_dir) if legacy else cert
        for i, data in enumerate(_planted(base, other)):
            r = run(audit, data, org=org)
            assert not verdict_line(r).startswith("certificate"), (legacy, i, r.stdout)
            assert r.returncode != 0 or verdict_line(r).startswith("failure_report"), (legacy, i, r.stdout)


def test_tampered_or_wrong_key_fails(station: Station, audit: Path) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    sig = bytearray(b64url_decode(obj["signature"]))
    sig[10] ^= 1
    r = run(audit, json.dumps(dict(obj, signature=b64url_encode(bytes(sig)))).encode())
    assert r.returncode != 0 and "Signature Verification Failure" in r.stdout + r.stderr
    assert "certificate:" not in r.stdout
    (audit / "pub.pem").write_bytes((audit / "org.pem").read_bytes())  # the wrong key
    r = run(audit, issued.json_path)
    assert r.returncode != 0 and "certificate:" not in r.stdout


def test_station_id_binding_of_the_key_file(station: Station, audit: Path) -> None:
    issued = station.issue(records.verified())
    pem = (audit / "pub.pem").read_text().replace("Tabula-Station-Id: bench-1", "Tabula-Station-Id: bench-9")
    (audit / "pub.pem").write_text(pem)
    r = run(audit, issued.json_path)
    assert r.returncode != 0 and "certificate:" not in r.stdout


def test_endorsement_checks(station: Station, audit: Path, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    raw = b64url_decode(obj["payload"])
    st_key = load_station_key(station.key_dir)
    org = load_org_key(station.root / "org")
    # an endorsement that had expired when the certificate was signed
    old = endorse(
        org,
        "bench-1",
        st_key.public,
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )
    r = run(
        audit, json.dumps(resign(obj, raw, station.key_dir, endorsement=old.to_json())).encode(), org=True
    )
    assert r.returncode != 0 and "certificate:" not in r.stdout
    # an endorsement of another station id
    other = endorse(org, "bench-2", st_key.public)
    r = run(
        audit, json.dumps(resign(obj, raw, station.key_dir, endorsement=other.to_json())).encode(), org=True
    )
    assert r.returncode != 0 and "certificate:" not in r.stdout
    # a legacy /1 endorsement (no validity) still works
    assert payload_of(old)["schema"] == "tabula.endorsement/2"
    # signed by a key that is not org.pem (a station key endorsing itself)
    rogue = SigningKey(role="org", name="rogue", private=st_key.private, kid=st_key.kid)
    selfie = endorse(rogue, "bench-1", st_key.public)
    r = run(
        audit, json.dumps(resign(obj, raw, station.key_dir, endorsement=selfie.to_json())).encode(), org=True
    )
    assert r.returncode != 0 and "Signature Verification Failure" in r.stdout + r.stderr


def test_revocation_list(station: Station, audit: Path) -> None:
    issued = station.issue(records.verified())
    org = load_org_key(station.root / "org")
    kid = load_station_key(station.key_dir).kid
    later = revoke(org, kid, reason="key_compromise", at=datetime.now(UTC) + timedelta(days=1))
    (audit / "revocations.json").write_bytes(envelope_bytes(later))
    r = run(audit, issued.json_path, org=True, revocations=True)
    assert r.returncode == 0 and verdict_line(r).startswith("certificate:"), r.stderr
    earlier = revoke(org, kid, reason="key_compromise", at=datetime.now(UTC) - timedelta(days=1))
    (audit / "revocations.json").write_bytes(envelope_bytes(earlier))
    r = run(audit, issued.json_path, org=True, revocations=True)
    assert r.returncode != 0 and "certificate:" not in r.stdout


def test_openssl_generated_key_can_be_trusted(tmp_path: Path) -> None:
    """Keys are plain PEM: a public key produced by openssl itself loads into the trust store."""
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(tmp_path / "k.pem")],
        check=True,
        timeout=30,
    )
    out = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "k.pem"), "-pubout"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    store = TrustStore()
    kid = store.add_pem(out, "openssl")
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=out,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert kid == hashlib.sha256(der).hexdigest()


# --- the lot report's recipe -----------------------------------------------------------------------------


def lot_blocks() -> list[str]:
    """The lot report recipe's shell blocks: 1 (the report and its signer), 2 (its records)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Verify a lot report with openssl and jq", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(found) == 2, "the README's lot report recipe lost a block"
    return found


def run_lot(workdir: Path, report: bytes) -> subprocess.CompletedProcess[str]:
    (workdir / "report.json").write_bytes(report)
    return subprocess.run(
        ["bash", "-c", "".join(lot_blocks())], cwd=workdir, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def lot_audit(station: Station, audit: Path) -> tuple[Path, SigningKey, LotReport]:
    """An auditor's folder: org.pem, certs/ with two certificates and a failure report, and the report."""
    org = load_org_key(station.root / "org")
    issued = [station.issue(records.verified()), station.issue(records.failed_verification())]
    shutil.copytree(station.cert_dir, audit / "certs")
    devices = (
        lots.device(1, drives=(lots.drive_of(issued[0]),)),
        lots.device(2, outcome="recycled", drives=(lots.drive_of(issued[1]),)),
    )
    return audit, org, lots.today_report(devices, org.kid)


def test_lot_recipe_verifies_a_report_and_its_records(lot_audit: tuple[Path, SigningKey, LotReport]) -> None:
    work, org, report = lot_audit
    r = run_lot(work, sign_lot_report(report, org))
    assert r.returncode == 0, r.stderr
    assert verdict_line(r) == (
        f"lot 2026-03/MAIRIE-VLB of Mairie de Villeurbanne: 2 device(s), 1 data cleared, 1 reused; "
        f"27000 g CO2e and 314 g of waste avoided (ADEME 2022); report {report.report_id}"
    )


def test_lot_recipe_refuses_what_station_verify_refuses(
    lot_audit: tuple[Path, SigningKey, LotReport], tmp_path: Path
) -> None:
    work, org, report = lot_audit
    good = json.loads(sign_lot_report(report, org))
    tampered = dict(good, payload=good["payload"][:-4] + "AAAA")
    stranger = init_org_key(tmp_path / "stranger", "Somebody")
    other = sign_lot_report(replace(report, organisation=Organisation("X", stranger.kid)), stranger)
    as_certificate = sign(report.to_json(), org.private, "tabula-certificate+json")
    for bad in (
        json.dumps(tampered).encode(),
        other,  # signed by another organisation key
        json.dumps(as_certificate.to_json()).encode(),  # another type
        json.dumps({**good, "header": {"endorsement": good}}).encode(),  # unprotected member
    ):
        assert run_lot(work, bad).returncode != 0
    assert TYP_LOT_REPORT in b64url_decode(good["protected"]).decode()
    # a listed record missing, or another record under its name
    signed = sign_lot_report(report, org)
    first = report.devices[0].drives[0].certificate_id
    moved = work / "certs" / f"{first}.json"
    kept = moved.read_bytes()
    moved.unlink()
    assert run_lot(work, signed).returncode != 0
    second = report.devices[1].drives[0].certificate_id
    moved.write_bytes((work / "certs" / f"{second}.json").read_bytes())
    assert run_lot(work, signed).returncode != 0
    moved.write_bytes(kept)
    assert run_lot(work, signed).returncode == 0
