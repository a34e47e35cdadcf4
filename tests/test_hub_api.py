"""The hub over real HTTP (uvicorn on loopback), against SQLite and a real PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from certs.errors import CertError
from certs.pdf import qr_payload
from hub.db import CertificateRow, Station
from hub.errors import AdminError
from hub.service import Hub
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


def put(url: str, kit: Kit, body: bytes, cert_id: str, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token != "":
        headers["Authorization"] = f"Bearer {token or kit.token}"
    return httpx.put(f"{url}/api/v1/certificates/{cert_id}", content=body, headers=headers, timeout=10)


def one(kit: Kit, **kw: object) -> tuple[str, bytes]:
    cert = kit.certificate(**kw)  # type: ignore[arg-type]
    return cert.certificate_id, kit.sign(cert)


def stored_count(hub: Hub) -> int:
    return hub.count()


def test_upload_is_idempotent_and_conflicts_are_refused(hub: Hub, hub_url: str, kit: Kit) -> None:
    cert_id, body = one(kit)
    r = put(hub_url, kit, body, cert_id)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "stored" and r.json()["kind"] == "certificate"
    r = put(hub_url, kit, body, cert_id)
    assert r.status_code == 200 and r.json()["status"] == "already_stored"
    # Different bytes under the same id (another certificate forged with this id): 409, nothing changes.
    kit.sequence -= 1
    kit.previous = None
    other = dataclasses.replace(kit.certificate(serial="OTHER"), certificate_id=cert_id)
    r = put(hub_url, kit, kit.sign(other), cert_id)
    assert r.status_code == 409 and r.json()["error"] == "id_conflict"
    assert stored_count(hub) == 1
    assert hub.get(cert_id).body == body


def test_tokens_are_required_and_only_their_hash_is_stored(
    hub: Hub, hub_url: str, kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cert_id, body = one(kit)
    assert put(hub_url, kit, body, cert_id, token="").status_code == 401
    r = put(hub_url, kit, body, cert_id, token="not-a-token")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert stored_count(hub) == 0
    assert put(hub_url, kit, body, cert_id).status_code == 201
    with hub.session() as s:
        row = s.scalar(select(Station))
        assert row is not None and row.token_sha256 == hashlib.sha256(kit.token.encode()).hexdigest()
        dump = " ".join(str(v) for r in s.execute(text("SELECT * FROM stations")) for v in r)
    assert kit.token not in dump
    assert kit.token not in caplog.text
    new = hub.new_token("bench-1")
    cert_id2, body2 = one(kit)
    assert put(hub_url, kit, body2, cert_id2, token=kit.token).status_code == 401  # old token is dead
    assert put(hub_url, kit, body2, cert_id2, token=new).status_code == 201
    hub.revoke(kit.key.kid, "stolen")
    cert_id3, body3 = one(kit)
    r = put(hub_url, kit, body3, cert_id3, token=new)
    assert r.status_code == 403 and r.json()["error"] == "station_revoked"
    with pytest.raises(AdminError, match="revoked"):  # a new token never un-revokes
        hub.new_token(kit.key.kid)
    assert put(hub_url, kit, body3, cert_id3, token=new).status_code == 403


def test_a_station_cannot_upload_another_stations_certificate(
    tmp_path: Path, hub: Hub, hub_url: str, org: Org, kit: Kit
) -> None:
    other = enrolled(hub, org, make_kit(tmp_path, org, "bench-2"))
    cert_id, body = one(other)
    r = put(hub_url, kit, body, cert_id)  # kit's token, other's signature
    assert r.status_code == 403 and r.json()["error"] == "foreign_signature"
    # A station of an organisation the hub does not know cannot be enrolled, so cannot upload either.
    stranger_org = make_org(tmp_path / "x", "Unknown Org")
    stranger = make_kit(tmp_path / "x", stranger_org, "rogue-1")
    with pytest.raises(AdminError):
        hub.enroll(stranger.endorsement)
    rogue_id, rogue_body = one(stranger)
    assert put(hub_url, kit, rogue_body, rogue_id).status_code == 403
    assert stored_count(hub) == 0
    assert put(hub_url, other, body, cert_id).status_code == 201


def _tamper(body: bytes, change: dict[str, object]) -> bytes:
    env = json.loads(body)
    pad = "=" * (-len(env["payload"]) % 4)
    payload = json.loads(base64.urlsafe_b64decode(env["payload"] + pad))
    payload["media"].update(change)
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    env["payload"] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return json.dumps(env).encode()


def test_invalid_uploads_are_refused_with_a_json_reason_and_nothing_stored(
    hub: Hub, hub_url: str, kit: Kit
) -> None:
    cert_id, body = one(kit)
    cases = [
        (_tamper(body, {"serial": "TAMPERED"}), cert_id, 422, "bad_signature"),
        (b'{"protected": "x"', cert_id, 422, "malformed"),
        (b"not json at all", cert_id, 422, "malformed"),
        (body, "not-a-uuid", 422, "bad_id"),
        (body, "00000000-0000-4000-8000-000000000000", 422, "id_mismatch"),
        (b"x" * (1024 * 1024 + 1), cert_id, 413, "payload_too_large"),
    ]
    for data, target, status, code in cases:
        r = put(hub_url, kit, data, target)
        assert (r.status_code, r.json()["error"]) == (status, code), r.text
    # Oversized without a Content-Length (chunked): refused while streaming.
    r = httpx.put(
        f"{hub_url}/api/v1/certificates/{cert_id}",
        content=iter([b"x" * 65536] * 20),
        headers={"Authorization": f"Bearer {kit.token}"},
    )
    assert r.status_code == 413
    assert stored_count(hub) == 0
    assert put(hub_url, kit, body, cert_id).status_code == 201


def test_chain_duplicates_and_breaks_are_refused(hub: Hub, hub_url: str, kit: Kit) -> None:
    first = kit.certificate()
    first_body = kit.sign(first)
    second = kit.certificate()
    second_body = kit.sign(second)
    assert put(hub_url, kit, second_body, second.certificate_id).status_code == 201  # out of order is fine
    assert put(hub_url, kit, first_body, first.certificate_id).status_code == 201
    # Another certificate claiming sequence 2 (e.g. a restored station): duplicate.
    kit.sequence, kit.previous = 1, hashlib.sha256(b"x").hexdigest()
    dup = kit.certificate()
    r = put(hub_url, kit, kit.sign(dup), dup.certificate_id)
    assert r.status_code == 409 and r.json()["error"] == "chain_duplicate"
    # Sequence 3 that does not link to the stored #2.
    kit.sequence, kit.previous = 2, hashlib.sha256(b"y").hexdigest()
    broken = kit.certificate()
    r = put(hub_url, kit, kit.sign(broken), broken.certificate_id)
    assert r.status_code == 422 and r.json()["error"] == "chain_break"
    assert stored_count(hub) == 2
    chain = httpx.get(f"{hub_url}/api/v1/stations/bench-1", headers={"Authorization": f"Bearer {kit.token}"})
    got = chain.json()
    assert {k: got[k] for k in ("station_id", "kid", "count", "highest", "gaps")} == {
        "station_id": "bench-1",
        "kid": kit.key.kid,
        "count": 2,
        "highest": 2,
        "gaps": [],
    }
    assert [k["kid"] for k in got["keys"]] == [kit.key.kid]


def test_lookups_by_id_serial_asset_and_station(
    tmp_path: Path, hub: Hub, hub_url: str, org: Org, kit: Kit
) -> None:
    ok_id, ok_body = one(kit, serial="SN-A", asset="PC-7")
    bad_id, bad_body = one(kit, serial="SN-B", asset="PC-7", success=False)
    for cid, body in ((ok_id, ok_body), (bad_id, bad_body)):
        assert put(hub_url, kit, body, cid).status_code == 201
    auth = {"Authorization": f"Bearer {kit.token}"}
    got = httpx.get(f"{hub_url}/api/v1/certificates/{ok_id}").json()  # public by id
    assert got["verified"] is True and got["serial"] == "SN-A" and got["asset_number"] == "PC-7"
    assert "endorsed by Atelier" in got["trust"]
    failed = httpx.get(f"{hub_url}/api/v1/certificates/{bad_id}").json()
    assert failed["verified"] is False and failed["authentic"] is True and failed["kind"] == "failure_report"
    by_serial = httpx.get(f"{hub_url}/api/v1/certificates", params={"serial": "SN-A"}, headers=auth).json()
    assert [c["certificate_id"] for c in by_serial["certificates"]] == [ok_id]
    by_asset = httpx.get(f"{hub_url}/api/v1/certificates", params={"asset_number": "PC-7"}, headers=auth)
    assert sorted(c["certificate_id"] for c in by_asset.json()["certificates"]) == sorted([ok_id, bad_id])
    by_station = httpx.get(f"{hub_url}/api/v1/certificates", params={"station": "bench-1"}, headers=auth)
    assert len(by_station.json()["certificates"]) == 2
    assert httpx.get(f"{hub_url}/api/v1/certificates", params={"serial": "SN-A"}).status_code == 401
    # Another organisation's station sees none of it.
    org2 = make_org(tmp_path / "o2", "Other Org")
    hub.add_organisation("Other Org", org2.pem)
    outsider = enrolled(hub, org2, make_kit(tmp_path / "o2", org2, "elsewhere-1"))
    theirs = httpx.get(
        f"{hub_url}/api/v1/certificates",
        params={"serial": "SN-A"},
        headers={"Authorization": f"Bearer {outsider.token}"},
    )
    assert theirs.json() == {"certificates": []}
    raw = httpx.get(f"{hub_url}/api/v1/certificates/{ok_id}/raw", headers=auth)
    assert raw.content == ok_body
    # The signed copy names the donor and the technician: not to the public, not to other organisations.
    assert httpx.get(f"{hub_url}/api/v1/certificates/{ok_id}/raw").status_code == 401
    other = {"Authorization": f"Bearer {outsider.token}"}
    r = httpx.get(f"{hub_url}/api/v1/certificates/{ok_id}/raw", headers=other)
    assert r.status_code == 403 and r.json()["error"] == "other_organisation"
    assert httpx.get(f"{hub_url}/api/v1/certificates/00000000-0000-4000-8000-000000000000").status_code == 404


def test_verify_page_follows_the_qr_code(hub: Hub, hub_url: str, kit: Kit) -> None:
    ok_id, ok_body = one(kit)
    bad_id, bad_body = one(kit, success=False)
    for cid, body in ((ok_id, ok_body), (bad_id, bad_body)):
        assert put(hub_url, kit, body, cid).status_code == 201
    digest = hub.get(ok_id).digest
    qr = qr_payload(ok_id, digest, f"{hub_url}/verify")  # what the PDF's QR code holds
    page = httpx.get(qr)
    assert page.status_code == 200 and "Erased and verified" in page.text and "<script" not in page.text
    assert ok_id in page.text and "Warning" not in page.text
    wrong = httpx.get(f"{hub_url}/verify", params={"id": ok_id, "sha256": "0" * 64})
    assert "does not match the stored certificate" in wrong.text
    failed = httpx.get(f"{hub_url}/verify/{bad_id}")
    assert "FAILURE REPORT" in failed.text and "Erased and verified" not in failed.text
    form = httpx.get(f"{hub_url}/verify")
    assert '<form method="get" action="/verify">' in form.text
    missing = httpx.get(f"{hub_url}/verify", params={"id": "00000000-0000-4000-8000-000000000000"})
    assert missing.status_code == 404 and "not found" in missing.text.lower()


def test_openapi_snapshot_and_reports(hub: Hub, hub_url: str, kit: Kit) -> None:
    spec = httpx.get(f"{hub_url}/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/certificates/{cert_id}" in spec["paths"]
    assert set(spec["paths"]["/api/v1/certificates/{cert_id}"]["put"]["responses"]) >= {
        "200",
        "201",
        "409",
        "413",
        "422",
    }
    ok_id, ok_body = one(kit, serial="SN-1", asset="PC-42")
    bad_id, bad_body = one(kit, serial="SN-2", asset="PC-42", success=False)
    for cid, body in ((ok_id, ok_body), (bad_id, bad_body)):
        assert put(hub_url, kit, body, cid).status_code == 201
    auth = {"Authorization": f"Bearer {kit.token}"}
    snap = httpx.get(f"{hub_url}/api/v1/machines/PC-42/snapshot", headers=auth).json()
    assert snap["type"] == "Snapshot" and snap["software"] == "Tabula" and snap["device"]["tag"] == "PC-42"
    comps = {c["serialNumber"]: c for c in snap["components"]}
    assert set(comps) == {"SN-1", "SN-2"}
    good = comps["SN-1"]["actions"][0]
    assert good["type"] == "EraseSectors" and good["severity"] == "Info"
    assert [s["type"] for s in good["steps"]] == ["StepZero", "StepRandom", "StepRandom"]  # 00, ff, prng
    assert good["tabula"]["certificate_id"] == ok_id
    assert comps["SN-2"]["actions"][0]["severity"] == "Error"
    assert comps["SN-1"]["type"] == "HardDrive" and comps["SN-1"]["size"] == 64 * 1024 * 1024 // 1_000_000
    again = httpx.get(f"{hub_url}/api/v1/machines/PC-42/snapshot", headers=auth).json()
    assert again["uuid"] == snap["uuid"]
    single = httpx.get(f"{hub_url}/api/v1/certificates/{ok_id}/snapshot").json()
    assert [c["serialNumber"] for c in single["components"]] == ["SN-1"]
    report = json.dumps({"schema": 1, "overall": "reuse"}).encode()
    rid = hashlib.sha256(report).hexdigest()
    url = f"{hub_url}/api/v1/reports/{rid}"
    assert httpx.put(url, content=report, headers=auth).status_code == 201
    assert httpx.put(url, content=report, headers=auth).status_code == 200
    assert httpx.put(url, content=b'{"x": 1}', headers=auth).json()["error"] == "id_mismatch"
    assert httpx.put(url, content=report).status_code == 401


def test_enrolment_needs_a_registered_organisation_and_a_valid_endorsement(
    tmp_path: Path, hub: Hub, org: Org, kit: Kit
) -> None:
    with pytest.raises(AdminError, match="already enrolled"):
        hub.enroll(kit.endorsement)
    with pytest.raises(AdminError, match="not a valid endorsement"):
        hub.enroll(kit.endorsement.replace(b'"signature": "', b'"signature": "AA'))
    with pytest.raises(AdminError, match="already registered"):
        hub.add_organisation("again", org.pem)
    with pytest.raises(AdminError, match="private key"):
        hub.add_organisation("oops", (org.key_dir / "org.key").read_bytes())
    assert [s["station_id"] for s in hub.stations()] == ["bench-1"]
    assert issubclass(AdminError, Exception) and not issubclass(AdminError, CertError)
    with hub.session() as s:
        assert s.scalar(select(CertificateRow)) is None
