"""The openssl-only verification recipe of certs/README.md, run for real with the openssl binary."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from certs.canonical import b64url_decode, b64url_encode
from certs.keys import export_public
from certs.trust import TrustStore
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, load_json, make_station, payload_of

README = Path(__file__).resolve().parent.parent / "certs" / "README.md"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl binary")


def recipe() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Verify with openssl only", 1)[1]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "the README lost its openssl recipe"
    return m.group(1)


def run_recipe(workdir: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    script = re.sub(r"^CERT=.*$", f"CERT='{cert}'", recipe(), count=1, flags=re.M)
    assert f"CERT='{cert}'" in script
    return subprocess.run(["bash", "-c", script], cwd=workdir, capture_output=True, text=True, timeout=60)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def test_openssl_version_is_3() -> None:
    out = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout
    assert re.match(r"OpenSSL [3-9]\.", out), out


def test_readme_recipe_verifies_a_certificate(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    work = tmp_path / "audit"
    work.mkdir()
    (work / "pub.pem").write_text(export_public(station.key_dir))
    r = run_recipe(work, issued.json_path)
    assert r.returncode == 0, r.stderr
    assert "Signature Verified Successfully" in r.stdout
    header = json.loads(b64url_decode(load_json(issued.json_path)["protected"]))
    # the fingerprint openssl computes from pub.pem is the kid in the header
    assert re.search(rf"^{header['kid']} \*stdin$", r.stdout, re.M), r.stdout
    # the signed record is printed, and openssl's hash of the compact form is the certificate hash
    assert f'"certificate_id":"{issued.certificate_id}"' in r.stdout
    assert re.search(rf"^{issued.digest} \*stdin$", r.stdout, re.M)
    assert payload_of(issued.json_path)["kind"] == "certificate"


def test_readme_recipe_rejects_a_tampered_certificate(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    sig = bytearray(b64url_decode(obj["signature"]))
    sig[10] ^= 1
    obj["signature"] = b64url_encode(bytes(sig))
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    work = tmp_path / "audit"
    work.mkdir()
    (work / "pub.pem").write_text(export_public(station.key_dir))
    r = run_recipe(work, forged)
    assert "Signature Verified Successfully" not in r.stdout
    assert "Signature Verification Failure" in r.stdout + r.stderr


def test_openssl_checks_with_the_wrong_key_fail(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    work = tmp_path / "audit"
    work.mkdir()
    (work / "pub.pem").write_bytes((station.root / "org" / "org.pub.pem").read_bytes())
    r = run_recipe(work, issued.json_path)
    assert "Signature Verified Successfully" not in r.stdout


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
