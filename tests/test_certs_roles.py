"""Keys with roles, station-id bindings, endorsement validity, revocation lists and unique ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.canonical import b64url_decode, canonical_json
from certs.errors import KeyStoreError, TrustStoreError
from certs.jws import TYP_CERTIFICATE, TYP_ENDORSEMENT, envelope_bytes, jwk_of, kid_of, sign
from certs.keys import (
    SigningKey,
    endorse,
    init_org_key,
    init_station_key,
    load_org_key,
    load_station_key,
    public_pem,
    read_public_pem,
    role_pem,
)
from certs.revocation import read_revocation_list, revoke
from certs.trust import TrustStore
from certs.verify import Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, load_json, make_station, payload_of, resign


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path / "s")


def org_of(st: Station) -> SigningKey:
    return load_org_key(st.root / "org")


def store_with(*pems: tuple[bytes, str]) -> TrustStore:
    store = TrustStore()
    for data, source in pems:
        store.add_pem(data, source)
    return store


# --- key files ---------------------------------------------------------------------------------------


def test_key_files_say_their_role(station: Station) -> None:
    st_file = read_public_pem((station.key_dir / "station.pub.pem").read_bytes(), "station")
    assert (st_file.role, st_file.station_id, st_file.declared) == ("station", "bench-1", True)
    org_file = read_public_pem((station.root / "org" / "org.pub.pem").read_bytes(), "org")
    assert (org_file.role, org_file.station_id) == ("organisation", None)
    assert json.loads((station.key_dir / "station.json").read_text())["role"] == "station"
    assert json.loads((station.root / "org" / "org.json").read_text())["role"] == "organisation"
    bare = read_public_pem(public_pem(load_station_key(station.key_dir).public).encode(), "bare")
    assert (bare.role, bare.declared) == ("organisation", False)  # legacy trust stores: organisation keys


@pytest.mark.parametrize(
    ("head", "error"),
    [
        ("Tabula-Role: station\n", "names the station"),
        ("Tabula-Role: admin\n", "unknown key role"),
        ("Tabula-Role: organisation\nTabula-Station-Id: x\n", "no station id"),
        ("Tabula-Role: station\nTabula-Station-Id: bad id\n", "invalid station id"),
        ("Tabula-Role: station\nTabula-Role: station\n", "twice"),
        ("Tabula-Colour: blue\n", "unknown key file field"),
    ],
)
def test_bad_key_files_are_refused(station: Station, head: str, error: str) -> None:
    pem = head + public_pem(load_station_key(station.key_dir).public)
    with pytest.raises(KeyStoreError, match=error):
        read_public_pem(pem.encode(), "k.pem")
    with pytest.raises(TrustStoreError, match=error):
        TrustStore().add_pem(pem.encode(), "k.pem")


def test_conflicting_roles_for_one_key(station: Station) -> None:
    key = load_station_key(station.key_dir).public
    store = TrustStore()
    store.add_pem(role_pem(key, "station", "bench-1").encode(), "a.pem")
    store.add_pem(public_pem(key).encode(), "legacy.pem")  # a bare copy does not demote it
    assert store.entries[kid_of(key)].role == "station"
    with pytest.raises(TrustStoreError, match="organisation key in b.pem"):
        store.add_pem(role_pem(key, "organisation").encode(), "b.pem")
    with pytest.raises(TrustStoreError, match="station key of bench-2"):
        store.add_pem(role_pem(key, "station", "bench-2").encode(), "c.pem")


# --- roles and bindings --------------------------------------------------------------------------------


def test_direct_trust_binds_the_station_id(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    store = TrustStore()
    store.add_station_key((station.key_dir / "station.pub.pem").read_bytes(), "bench-1", "bench-1.pem")
    assert Verifier(store).verify_file(issued.json_path).ok
    other = TrustStore()
    other.add_station_key((station.key_dir / "station.pub.pem").read_bytes(), "bench-7", "bench-7.pem")
    v = Verifier(other).verify_file(issued.json_path)
    assert v.reason == "station_mismatch" and "bench-7" in v.problems[0][1]
    # the key signing as another station: re-signed by the real station key
    obj = load_json(issued.json_path)
    doc = payload_of(issued.json_path)
    doc["station"]["id"] = "bench-2"
    forged = resign(obj, canonical_json(doc), station.key_dir, endorsement=False)
    v = Verifier(store).verify_envelope(json.dumps(forged).encode(), "forged")
    assert v.reason == "station_mismatch"


def test_an_organisation_key_cannot_sign_a_certificate(station: Station) -> None:
    issued = station.issue(records.verified())
    org = org_of(station)
    doc = payload_of(issued.json_path)
    doc["station"]["kid"] = org.kid
    env = sign(doc, org.private, TYP_CERTIFICATE)
    v = station.verifier().verify_envelope(envelope_bytes(env), "by-org")
    assert v.reason == "key_role" and "organisation key" in v.problems[0][1]
    # a bare PEM is an organisation key: a station key given bare cannot sign directly either
    bare = store_with((public_pem(load_station_key(station.key_dir).public).encode(), "bare.pem"))
    v = Verifier(bare).verify_file(issued.json_path)
    assert v.reason == "key_role" and "give its role and station id" in v.problems[0][1]


def test_a_station_key_cannot_endorse(station: Station, tmp_path: Path) -> None:
    """Station A (trusted directly) endorses station key B: refused, only organisation keys endorse."""
    a = load_station_key(station.key_dir)
    b_root = tmp_path / "b"
    b = init_station_key(b_root / "keys", "bench-b")
    with pytest.raises(KeyStoreError, match="only an organisation key"):
        endorse(a, "bench-b", b.public)
    rogue = SigningKey(role="org", name="bench-1 pretending", private=a.private, kid=a.kid)
    endorsement = endorse(rogue, "bench-b", b.public)
    b_station = Station(
        root=b_root, key_dir=b_root / "keys", cert_dir=b_root / "certs", trust_dir=station.trust_dir
    )
    (b_station.key_dir / "endorsement.json").write_bytes(envelope_bytes(endorsement))
    issued = b_station.issue(records.verified())
    store = store_with((role_pem(a.public, "station", "bench-1").encode(), "a.pem"))
    v = Verifier(store).verify_file(issued.json_path)
    assert v.reason == "unendorsed_key" and "only organisation keys endorse" in v.problems[0][1]


# --- validity ------------------------------------------------------------------------------------------


def test_endorsement_validity_period(station: Station) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    raw = b64url_decode(obj["payload"])
    org = org_of(station)
    key = load_station_key(station.key_dir).public
    now = datetime.now(UTC)
    cases = {
        "expired": endorse(
            org, "bench-1", key, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
        ),
        "future": endorse(
            org, "bench-1", key, not_before=now + timedelta(days=1), not_after=now + timedelta(days=30)
        ),
        "current": endorse(
            org, "bench-1", key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=1)
        ),
    }
    for name, e in cases.items():
        v = station.verifier().verify_envelope(
            json.dumps(resign(obj, raw, station.key_dir, endorsement=e.to_json())).encode(), name
        )
        if name == "current":
            assert v.ok, v.problems
        else:
            assert v.reason == "unendorsed_key" and "is valid from" in v.problems[0][1], (name, v.problems)
    with pytest.raises(KeyStoreError, match="before it starts"):
        endorse(org, "bench-1", key, not_before=now, not_after=now - timedelta(seconds=1))
    assert payload_of(cases["current"])["role"] == "station"


def test_legacy_v1_endorsement_never_expires(station: Station) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    org = org_of(station)
    key = load_station_key(station.key_dir).public
    v1 = {
        "schema": "tabula.endorsement/1",
        "endorsement_id": "00000000-0000-4000-8000-000000000000",
        "station_id": "bench-1",
        "station_kid": kid_of(key),
        "station_jwk": jwk_of(key),
        "organisation": org.name,
        "issued_at": "2020-01-01T00:00:00Z",
    }
    e = sign(v1, org.private, TYP_ENDORSEMENT)
    v = station.verifier().verify_envelope(
        json.dumps(
            resign(obj, b64url_decode(obj["payload"]), station.key_dir, endorsement=e.to_json())
        ).encode(),
        "v1",
    )
    assert v.ok, v.problems


# --- revocation ---------------------------------------------------------------------------------------


def test_revoked_station_key(station: Station) -> None:
    issued = station.issue(records.verified())
    org = org_of(station)
    kid = load_station_key(station.key_dir).kid
    issued_at = datetime.fromisoformat(issued.certificate.issued_at.replace("Z", "+00:00"))
    after = revoke(org, kid, reason="key_compromise", comment="stolen", at=issued_at + timedelta(seconds=1))
    (station.trust_dir / "revocations.json").write_bytes(envelope_bytes(after))
    v = station.verifier().verify_file(issued.json_path)
    assert v.ok and v.notes and "revoked" in v.notes[0] and "signed before" in v.notes[0]
    before = revoke(org, kid, reason="key_compromise", at=issued_at - timedelta(seconds=1))
    (station.trust_dir / "revocations.json").write_bytes(envelope_bytes(before))
    v = station.verifier().verify_file(issued.json_path)
    assert v.reason == "revoked_key" and "stolen" not in v.problems[0][1] and "after that" in v.problems[0][1]


def test_revoked_organisation_key_and_untrusted_lists(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    org = org_of(station)
    past = datetime.now(UTC) - timedelta(days=2)
    (station.trust_dir / "revocations.json").write_bytes(
        envelope_bytes(revoke(org, org.kid, reason="key_compromise", at=past))
    )
    v = station.verifier().verify_file(issued.json_path)
    assert v.reason == "revoked_key" and org.kid[:16] in v.problems[0][1]
    # a list signed by a key the auditor does not trust as an organisation changes nothing
    stranger = init_org_key(tmp_path / "stranger", "Stranger")
    kid = load_station_key(station.key_dir).kid
    (station.trust_dir / "revocations.json").write_bytes(
        envelope_bytes(revoke(stranger, kid, reason="key_compromise", at=past))
    )
    assert station.verifier().verify_file(issued.json_path).ok
    # nor does a list signed by a station key (only organisation keys revoke)
    st_key = load_station_key(station.key_dir)
    rogue = SigningKey(role="org", name="rogue", private=st_key.private, kid=st_key.kid)
    store = TrustStore.load([station.trust_dir])
    store.add_pem((station.key_dir / "station.pub.pem").read_bytes(), "station.pem")
    store.add_revocation_list(
        envelope_bytes(revoke(rogue, kid, reason="key_compromise", at=past)), "rogue.json"
    )
    assert Verifier(store).verify_file(issued.json_path).ok


def test_revocation_list_format(station: Station) -> None:
    org = org_of(station)
    first = revoke(org, "aa" * 32, reason="superseded", comment="new key")
    rl = read_revocation_list(envelope_bytes(first))
    second = revoke(org, "bb" * 32, reason="cessation_of_operation", existing=rl)
    rl2 = read_revocation_list(envelope_bytes(second))
    assert [r.kid for r in rl2.revoked] == ["aa" * 32, "bb" * 32] and rl2.org_kid == org.kid
    body = payload_of(second)
    assert set(body) == {"schema", "organisation", "issued_at", "revoked"}
    assert body["schema"] == "tabula.revocation/1" and set(body["revoked"][0]) == {
        "kid",
        "revoked_at",
        "reason",
        "comment",
    }
    with pytest.raises(KeyStoreError, match="already revoked"):
        revoke(org, "aa" * 32, reason="superseded", existing=rl2)
    with pytest.raises(KeyStoreError, match="unknown revocation reason"):
        revoke(org, "cc" * 32, reason="bored")
    with pytest.raises(KeyStoreError, match="only an organisation key"):
        revoke(load_station_key(station.key_dir), "cc" * 32, reason="superseded")


# --- unique ids -----------------------------------------------------------------------------------------


def test_two_records_with_one_certificate_id(station: Station, tmp_path: Path) -> None:
    issued = station.issue(records.verified())
    obj = load_json(issued.json_path)
    doc = payload_of(issued.json_path)
    doc["media"]["serial"] = "ANOTHER-DRIVE"
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps(resign(obj, canonical_json(doc), station.key_dir)))
    folder = [issued.json_path, issued.pdf_path, twin]
    verdicts = station.verifier().verify_paths(folder)
    assert [v.reason for v in verdicts] == ["duplicate_id"] * 3
    # the JSON and the PDF of one certificate are one record, not a duplicate
    assert all(v.ok for v in station.verifier().verify_paths(folder[:2]))


def test_ignored_revocation_lists_are_reported(
    station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from certs.cli import main

    issued = station.issue(records.verified())
    stranger = init_org_key(tmp_path / "stranger", "Stranger")
    kid = load_station_key(station.key_dir).kid
    (station.trust_dir / "revocations.json").write_bytes(
        envelope_bytes(revoke(stranger, kid, reason="key_compromise"))
    )
    assert main(["verify", str(issued.json_path), "--trust", str(station.trust_dir)]) == 0
    assert "revocation list of 'Stranger' ignored" in capsys.readouterr().err
