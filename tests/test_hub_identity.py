"""Identity, revocation, offline verifiability and what auditors can fetch, on both databases."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from certs.canonical import canonical_json
from hub.cli import main as hub_main
from hub.db import CertificateRow
from hub.errors import AdminError
from hub.service import Hub
from tests.test_hub_support import cert_at, client_for, put, sign_raw, verify_offline
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    Org,
    db_url,
    enrolled,
    hub,
    hub_url,
    kit,
    make_kit,
    make_org,
    org,
    pg_admin_url,
)


def test_a_station_id_names_one_active_key_per_organisation(
    tmp_path: Path, hub: Hub, org: Org, kit: Kit
) -> None:
    second = make_kit(tmp_path / "new", org, "bench-1")  # the same id, a new key (a reinstalled station)
    with pytest.raises(AdminError, match="already has an active station 'bench-1'"):
        hub.enroll(second.endorsement)
    info, second.token = hub.enroll(second.endorsement, replace=True)
    listed = {s["kid"]: s for s in hub.stations()}
    assert (
        listed[kit.key.kid]["revoked"]
        and f"replaced by key {second.key.kid}" in listed[kit.key.kid]["revocation_reason"]
    )
    assert not listed[second.key.kid]["revoked"]
    # Another organisation may have its own bench-1: then the id alone is ambiguous.
    org2 = make_org(tmp_path / "o2", "Other Org")
    hub.add_organisation("Other Org", org2.pem)
    other = enrolled(hub, org2, make_kit(tmp_path / "o2", org2, "bench-1"))
    with pytest.raises(AdminError, match="names 3 station keys") as err:
        hub.revoke("bench-1")
    assert kit.key.kid in err.value.message and other.key.kid in err.value.message
    with pytest.raises(AdminError, match="names 3"):
        hub.new_token("bench-1")
    st = hub.revoke(other.key.kid[:12], "decommissioned")  # a fingerprint prefix is enough
    assert st.kid == other.key.kid and st.revocation_reason == "decommissioned"
    with pytest.raises(AdminError, match="revoked"):
        hub.new_token(other.key.kid)  # never un-revokes
    with pytest.raises(AdminError, match="already revoked"):
        hub.revoke(other.key.kid)


def test_tokens_expire(hub: Hub, hub_url: str, kit: Kit) -> None:
    cid, body, _ = cert_at(kit, 1, None)
    token = hub.new_token(kit.key.kid, expires=datetime.now(UTC) - timedelta(seconds=1))
    r = client_for(hub_url, token).put(f"/api/v1/certificates/{cid}", content=body)
    assert r.status_code == 401 and r.json()["error"] == "token_expired"
    token = hub.new_token(kit.key.kid, expires=datetime.now(UTC) + timedelta(days=1))
    assert client_for(hub_url, token).put(f"/api/v1/certificates/{cid}", content=body).status_code == 201


def test_the_cli_takes_fingerprints_refuses_ambiguity_and_never_unrevokes(
    tmp_path: Path, db_url: str, hub: Hub, org: Org, kit: Kit, capsys: pytest.CaptureFixture[str]
) -> None:
    org2 = make_org(tmp_path / "o2", "Other Org")
    hub.add_organisation("Other Org", org2.pem)
    other = enrolled(hub, org2, make_kit(tmp_path / "o2", org2, "bench-1"))
    assert hub_main(["revoke", "--db", db_url, "bench-1"]) == 2
    assert "names 2 station keys" in capsys.readouterr().err
    assert (
        hub_main(["revoke", "--db", db_url, kit.key.kid, "--reason", "stolen", "--since", "2026-01-01"]) == 0
    )
    assert hub_main(["token", "--db", db_url, kit.key.kid]) == 2
    assert "revoked" in capsys.readouterr().err
    assert hub_main(["token", "--db", db_url, other.key.kid, "--expires", "someday"]) == 2
    out = tmp_path / "tok"
    assert (
        hub_main(["token", "--db", db_url, other.key.kid, "--expires", "30d", "--token-out", str(out)]) == 0
    )
    assert hub_main(["stations", "--db", db_url, "--json"]) == 0
    rows = {r["kid"]: r for r in json.loads(capsys.readouterr().out)}
    assert (
        rows[kit.key.kid]["revoked_at"].startswith("2026-01-01")
        and rows[kit.key.kid]["revocation_reason"] == "stolen"
    )
    assert sum(r["token_expires_at"] is not None for r in rows.values()) == 1


def test_lookups_show_the_registered_name_and_signatures_after_revocation(
    tmp_path: Path, db_url: str, hub_url: str
) -> None:
    hub = Hub(db_url)
    o = make_org(tmp_path)  # its key is named "Atelier Réemploi" inside every endorsement
    hub.add_organisation("Registered Name", o.pem)
    k = enrolled(hub, o, make_kit(tmp_path, o, "bench-9"))
    c = client_for(hub_url, k.token)
    cid, body, _ = cert_at(k, 1, None)
    assert put(c, cid, body).status_code == 201
    got = httpx.get(f"{hub_url}/api/v1/certificates/{cid}").json()
    assert got["organisation"] == "Registered Name" and "Registered Name" in got["trust"]
    assert "Atelier" not in json.dumps(got)
    assert got["station_revoked_at"] is None and got["signed_after_revocation"] is False
    page = httpx.get(f"{hub_url}/verify/{cid}").text
    assert "Registered Name" in page and "Atelier" not in page
    # The key turns out to have been stolen an hour before this certificate was signed.
    hub.revoke(k.key.kid, "stolen laptop", since=datetime.now(UTC) - timedelta(hours=1))
    got = httpx.get(f"{hub_url}/api/v1/certificates/{cid}").json()
    assert got["signed_after_revocation"] is True and got["station_revocation_reason"] == "stolen laptop"
    page = httpx.get(f"{hub_url}/verify/{cid}").text
    assert "was revoked on" in page and "signed <strong>after</strong> that" in page
    hub.engine.dispose()


def test_only_what_verifies_offline_with_the_organisation_key_is_stored(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    c = client_for(hub_url, kit.token)
    good_id, good, _ = cert_at(kit, 1, None)
    doc = json.loads(good)
    variants = {
        "unknown member": {**doc, "header": {**doc["header"], "x-note": "trust me"}},
        "garbage endorsement": {**doc, "header": {"endorsement": "garbage"}},
        "no endorsement": {k: v for k, v in doc.items() if k != "header"},
        "another station's endorsement": {
            **doc,
            "header": {"endorsement": json.loads(make_kit(tmp_path / "x", org, "bench-x").endorsement)},
        },
    }
    for name, variant in variants.items():
        r = put(c, good_id, json.dumps(variant).encode())
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"] in ("malformed", "unknown_header_member", "unendorsed_key", "unknown_key"), (
            name
        )
    assert put(c, good_id, good).status_code == 201


def test_every_raw_verifies_offline_with_only_the_organisation_key(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    c = client_for(hub_url, kit.token)
    ids = []
    for n in range(1, 7):
        cid, body, _ = cert_at(kit, n, kit.previous if n > 1 else None, success=n % 3 != 0)
        assert put(c, cid, body).status_code == 201
        ids.append(cid)
    orgs = httpx.get(f"{hub_url}/api/v1/organisations").json()["organisations"]
    (o,) = orgs
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "org.pem").write_bytes(httpx.get(f"{hub_url}{o['links']['keys']}").content)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for cid in ids:
        (fetched / f"{cid}.json").write_bytes(c.get(f"/api/v1/certificates/{cid}/raw").content)
    report = verify_offline([fetched], trust)
    assert report["checked"] == 6
    assert sorted(r["reason"] for r in report["results"]) == ["failure_report"] * 2 + ["ok"] * 4
    # What else an auditor needs is published: endorsements and revocations.
    ends = httpx.get(f"{hub_url}{o['links']['endorsements']}").json()
    assert [s["kid"] for s in ends["stations"]] == [kit.key.kid] and ends["stations"][0]["endorsement"][
        "signature"
    ]
    hub.revoke(kit.key.kid, "retired")
    revs = httpx.get(f"{hub_url}{o['links']['revocations']}").json()["revocations"]
    assert [(r["kid"], r["reason"]) for r in revs] == [(kit.key.kid, "retired")] and revs[0]["revoked_at"]
    assert httpx.get(f"{hub_url}/api/v1/organisations/{'0' * 64}/keys.pem").status_code == 404


def test_personal_data_is_removed_on_request_and_the_chain_still_holds(
    hub: Hub, hub_url: str, kit: Kit
) -> None:
    c = client_for(hub_url, kit.token)
    cid, body, digest = cert_at(kit, 1, None)
    assert put(c, cid, body).status_code == 201
    assert hub.redact(cid.upper()).redacted_at is not None
    r = c.get(f"/api/v1/certificates/{cid}/raw")
    assert r.status_code == 410 and r.json()["error"] == "personal_data_removed"
    got = httpx.get(f"{hub_url}/api/v1/certificates/{cid}").json()
    assert got["personal_data_removed"] and got["verified"] and got["sha256"] == digest
    assert "removed on request" in httpx.get(f"{hub_url}/verify/{cid}").text
    assert httpx.get(f"{hub_url}/api/v1/certificates/{cid}/snapshot").status_code == 410
    assert put(c, cid, body).status_code == 200  # the same certificate again changes nothing
    nid, nbody, _ = cert_at(kit, 2, digest)
    assert put(c, nid, nbody).status_code == 201  # the next one still links to the kept hash
    with hub.session() as s:
        assert s.get(CertificateRow, cid).body == b""  # type: ignore[union-attr]


def test_sign_raw_helper_makes_a_certificate_the_hub_accepts(hub_url: str, kit: Kit) -> None:
    """(The hostile-input tests build payloads with sign_raw: it must sign like the station.)"""

    cert = kit.certificate()
    body = sign_raw(kit, canonical_json(cert.to_dict()))
    assert put(client_for(hub_url, kit.token), cert.certificate_id, body).status_code == 201
