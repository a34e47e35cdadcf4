"""Destruction records on the hub (``PUT /api/v1/destructions/{id}``), SQLite and PostgreSQL: verified
as an auditor would, numbered in the station's chain with its certificates, logged, never shown as
an erasure, and what clears a drive that could not be erased."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx

from certs.issue import IssuedDestruction, issue_destruction
from hub.service import Hub
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS
from tests.test_hub_lots import LOT, client, put_cert, put_report, report, staff_token
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

JSON = {"Content-Type": "application/json"}


def destroy(kit: Kit, asset: str, method: str = "drill") -> IssuedDestruction:
    """A destruction record signed by ``kit`` as ``station destroy`` signs it, next in its chain."""
    d = issue_destruction(
        records.failed_bad_ranges(),
        key_dir=kit.home / "keys",
        cert_dir=kit.cert_dir,
        method=method,
        performed_by="Camille Martin",
        settings=dataclasses.replace(SETTINGS, asset_number=asset),
    )
    kit.sequence, kit.previous = d.sequence, d.digest  # the kit's next certificate follows it
    return d


def test_a_destruction_record_is_stored_in_the_chain_and_logged(hub: Hub, hub_url: str, kit: Kit) -> None:
    d = destroy(kit, "PC-3")
    body = d.json_path.read_bytes()
    station = client(hub_url, kit.token)
    r = station.put(f"/api/v1/destructions/{d.record_id}", content=body, headers=JSON)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["kind"] == "destruction" and doc["sequence"] == 1 and doc["sha256"] == d.digest
    assert doc["log"]["leaf_index"] == 0
    again = station.put(f"/api/v1/destructions/{d.record_id.upper()}", content=body, headers=JSON)
    assert again.status_code == 200 and again.json()["status"] == "already_stored"
    # the next certificate of the station links to the destruction record: one chain, no gap
    put_cert(station, kit, asset="PC-4")
    chain = station.get("/api/v1/stations/bench-1").json()
    assert chain["count"] == 2 and chain["gaps"] == []
    # public lookups: authentic, a destruction, never an erasure
    facts = httpx.get(f"{hub_url}/api/v1/certificates/{d.record_id}").json()
    assert (facts["kind"], facts["verified"], facts["authentic"], facts["reason"]) == (
        "destruction",
        False,
        True,
        "destruction",
    )
    assert facts["level_achieved"] == "destroy" and facts["outcome"] == "destroyed"
    page = httpx.get(f"{hub_url}/verify/{d.record_id}").text
    assert "Physically destroyed" in page and "never erased" in page and "FAILURE" not in page
    raw = station.get(f"/api/v1/certificates/{d.record_id}/raw")
    assert raw.content == body


def test_a_destruction_record_is_refused_with_a_reason(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    d = destroy(kit, "PC-3")
    body = d.json_path.read_bytes()
    station = client(hub_url, kit.token)
    r = station.put(f"/api/v1/certificates/{d.record_id}", content=body, headers=JSON)
    assert r.status_code == 422 and r.json()["error"] == "malformed"  # not a certificate
    other = enrolled(hub, org, make_kit(tmp_path / "b2", org, "bench-2"))
    r = client(hub_url, other.token).put(f"/api/v1/destructions/{d.record_id}", content=body, headers=JSON)
    assert r.status_code == 403 and r.json()["error"] == "foreign_signature"
    env = json.loads(body)
    env["signature"] = env["signature"][:-4] + ("AAAA" if not env["signature"].endswith("AAAA") else "BBBB")
    r = station.put(f"/api/v1/destructions/{d.record_id}", content=json.dumps(env).encode(), headers=JSON)
    assert r.status_code == 422 and r.json()["error"] == "bad_signature", r.text
    r = station.put("/api/v1/destructions/00000000-0000-4000-8000-000000000000", content=body, headers=JSON)
    assert r.status_code == 422 and r.json()["error"] == "id_mismatch"
    assert (
        httpx.put(f"{hub_url}/api/v1/destructions/{d.record_id}", content=body, headers=JSON).status_code
        == 401
    )
    assert hub.count() == 0  # nothing stored on any refusal


def test_a_destroyed_drive_clears_its_device(hub: Hub, hub_url: str, org: Org, kit: Kit) -> None:
    staff = client(hub_url, staff_token(hub, org))
    station = client(hub_url, kit.token)
    lot_id = staff.post("/api/v1/lots", json=LOT).json()["id"]
    station.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": "PC-3", "kind": "laptop"})
    d = destroy(kit, "PC-3")
    serial = d.record.media.serial
    assert serial
    put_report(station, report("PC-3", LOT["reference"], [serial, "OTHER"]))
    r = station.put(f"/api/v1/destructions/{d.record_id}", content=d.json_path.read_bytes(), headers=JSON)
    assert r.status_code == 201
    device = station.get("/api/v1/devices", params={"asset_number": "PC-3"}).json()["device"]
    assert not device["data_cleared"]  # the second drive has no proof yet
    assert device["drives"][0]["proof"] == {"kind": "destruction", "id": d.record_id, "level": "destroy",
                                            "date": d.record.issued_at}  # fmt: skip
    put_cert(station, kit, asset="PC-3", serial="OTHER")
    device = station.get("/api/v1/devices", params={"asset_number": "PC-3"}).json()["device"]
    assert device["data_cleared"] and "drive_destroyed" in [e["event"] for e in device["timeline"]]
