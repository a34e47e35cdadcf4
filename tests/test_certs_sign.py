"""Issuing, signing, keys, endorsements and trust decisions."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certs.canonical import b64url_decode, canonical_json
from certs.errors import KeyExists, KeyMissing, KeyStoreError, TrustStoreError
from certs.fsio import default_key_dir, tabula_home
from certs.issue import issue_certificate
from certs.jws import envelope_bytes, parse_envelope
from certs.keys import (
    endorse,
    export_public,
    init_org_key,
    init_station_key,
    install_endorsement,
    load_org_key,
    load_station_key,
)
from certs.trust import TrustStore
from certs.verify import Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import load_json, make_station, payload_of


def test_round_trip_verified_certificate(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = st.issue(records.verified())
    assert issued.verified_success and issued.sequence == 1
    assert issued.json_path == st.cert_dir / f"{issued.certificate_id}.json"
    assert issued.pdf_path.exists()
    v = st.verifier().verify_file(issued.json_path)
    assert v.ok, v.problems
    assert v.certificate == issued.certificate
    assert v.digest == issued.digest
    assert "endorsed by Atelier Réemploi" in v.trust


def test_envelope_is_a_standard_flattened_jws(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = st.issue(records.verified())
    obj = load_json(issued.json_path)
    assert set(obj) == {"protected", "payload", "signature"}  # nothing unprotected
    for k in ("protected", "payload", "signature"):
        assert "=" not in obj[k] and "+" not in obj[k] and "/" not in obj[k]
    header = json.loads(b64url_decode(obj["protected"]))
    assert header["alg"] == "EdDSA" and header["typ"] == "tabula-certificate+json"
    # the organisation's endorsement is in the protected header: the station signs which one it claims
    assert json.loads(b64url_decode(header["endorsement"]["payload"]))["station_kid"] == header["kid"]
    pub = load_station_key(st.key_dir).public
    der = pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert header["kid"] == hashlib.sha256(der).hexdigest()
    assert len(der) == 44
    # payload is canonical JSON of the certificate
    payload = b64url_decode(obj["payload"])
    assert payload == canonical_json(json.loads(payload))
    assert json.loads(payload)["certificate_id"] == issued.certificate_id
    # signature is over ASCII(protected.payload), checked with the station key alone
    pub.verify(b64url_decode(obj["signature"]), f"{obj['protected']}.{obj['payload']}".encode("ascii"))
    assert parse_envelope(issued.json_path.read_bytes()).digest == issued.digest
    assert (
        issued.digest
        == hashlib.sha256(f"{obj['protected']}.{obj['payload']}.{obj['signature']}".encode()).hexdigest()
    )


@pytest.mark.parametrize("name", sorted(records.ALL_FAILURES))
def test_failure_reports_are_signed_but_never_a_success(tmp_path: Path, name: str) -> None:
    st = make_station(tmp_path)
    issued = st.issue(records.ALL_FAILURES[name]())
    assert not issued.verified_success
    v = st.verifier().verify_file(issued.json_path)
    assert v.authentic and not v.ok
    assert v.reason == "failure_report"
    assert payload_of(issued.json_path)["kind"] == "failure_report"


def test_station_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key = init_station_key(key_dir, "bench-1")
    mode = stat.S_IMODE((key_dir / "station.key").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    before = (key_dir / "station.key").read_bytes()
    with pytest.raises(KeyExists):
        init_station_key(key_dir, "bench-1")
    assert (key_dir / "station.key").read_bytes() == before
    pem = export_public(key_dir)
    assert pem.startswith("Tabula-Role: station\nTabula-Station-Id: bench-1\n-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in pem
    assert load_station_key(key_dir).kid == key.kid
    os.chmod(key_dir / "station.key", 0o644)
    with pytest.raises(KeyStoreError, match="readable by other users"):
        load_station_key(key_dir)


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyMissing) as err:
        issue_certificate(records.verified(), key_dir=tmp_path / "nokeys", cert_dir=tmp_path / "c")
    assert "station keys init" in err.value.diagnostics()


def test_invalid_station_id_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="invalid station id"):
        init_station_key(tmp_path / "k", "bad id with spaces")


def test_default_paths_follow_tabula_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TABULA_HOME", str(tmp_path))
    assert tabula_home() == tmp_path and default_key_dir() == tmp_path / "keys"
    monkeypatch.delenv("TABULA_HOME")
    expected = Path("/var/lib/tabula") if os.geteuid() == 0 else Path.home() / ".local/state/tabula"
    assert tabula_home() == expected


def test_trust_direct_key_without_endorsement(tmp_path: Path) -> None:
    st = make_station(tmp_path, endorsed=False)
    issued = st.issue(records.verified())
    # only the org key is trusted and the station is not endorsed: unknown key
    v = st.verifier().verify_file(issued.json_path)
    assert v.reason == "unknown_key"
    # trust the station key directly
    (st.trust_dir / "bench-1.pem").write_text(export_public(st.key_dir))
    assert st.verifier().verify_file(issued.json_path).ok


def test_endorsement_in_trust_dir_covers_old_certificates(tmp_path: Path) -> None:
    st = make_station(tmp_path, endorsed=False)
    issued = st.issue(records.verified())
    org = load_org_key(tmp_path / "org")
    env = endorse(org, "bench-1", load_station_key(st.key_dir).public)
    (st.trust_dir / "bench-1.endorsement.json").write_bytes(envelope_bytes(env))
    assert st.verifier().verify_file(issued.json_path).ok


def test_unendorsed_when_endorser_is_not_trusted(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = st.issue(records.verified())
    other = tmp_path / "other-trust"
    other.mkdir()
    init_org_key(tmp_path / "org2", "Someone else")
    (other / "org2.pem").write_bytes((tmp_path / "org2" / "org.pub.pem").read_bytes())
    v = Verifier(TrustStore.load([other])).verify_file(issued.json_path)
    assert v.reason == "unendorsed_key" and "untrusted key" in v.problems[0][1]


def test_endorsement_for_another_station_id_is_refused(tmp_path: Path) -> None:
    st = make_station(tmp_path, endorsed=False)
    org = load_org_key(tmp_path / "org")
    wrong = envelope_bytes(endorse(org, "bench-2", load_station_key(st.key_dir).public))
    with pytest.raises(KeyStoreError, match="bench-2"):
        install_endorsement(st.key_dir, wrong)
    # an auditor given that endorsement still refuses the station's certificates
    (st.trust_dir / "wrong.json").write_bytes(wrong)
    issued = st.issue(records.verified())
    v = st.verifier().verify_file(issued.json_path)
    assert v.reason == "unendorsed_key" and "bench-2" in v.problems[0][1]


def test_endorsement_of_another_key_is_refused(tmp_path: Path) -> None:
    st = make_station(tmp_path, endorsed=False)
    other = init_station_key(tmp_path / "k2", "bench-1")
    data = envelope_bytes(endorse(load_org_key(tmp_path / "org"), "bench-1", other.public))
    with pytest.raises(KeyStoreError, match="another station key"):
        install_endorsement(st.key_dir, data)


def test_trust_store_refuses_private_keys_and_junk(tmp_path: Path) -> None:
    d = tmp_path / "trust"
    d.mkdir()
    init_station_key(tmp_path / "k", "s1")
    (d / "oops.pem").write_bytes((tmp_path / "k" / "station.key").read_bytes())
    with pytest.raises(TrustStoreError, match="private key"):
        TrustStore.load([d])
    (d / "oops.pem").write_text("not a key")
    with pytest.raises(TrustStoreError):
        TrustStore.load([d])
    (d / "oops.pem").unlink()
    (d / "x.json").write_text("{}")
    with pytest.raises(TrustStoreError, match="not a signed Tabula file"):
        TrustStore.load([d])
    with pytest.raises(TrustStoreError, match="does not exist"):
        TrustStore.load([tmp_path / "nope"])


def test_language_and_health_reach_the_record(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = st.issue(records.verified(), health={"verdict": "pass", "reallocated": 0}, lang="fr")
    assert payload_of(issued.json_path)["health"] == {"verdict": "pass", "reallocated": 0}
