"""eReuse DeviceHub export of lots and device events, over real HTTP, SQLite and PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import httpx

from hub.service import Hub
from tests.test_hub_destructions import JSON, destroy
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


def test_a_lot_exports_as_a_devicehub_lot_with_device_events(
    hub: Hub, hub_url: str, org: Org, kit: Kit
) -> None:
    staff, station = client(hub_url, staff_token(hub, org)), client(hub_url, kit.token)
    household = {**LOT, "donor_name": "Jeanne Martin", "donor_kind": "household"}
    lot_id = staff.post("/api/v1/lots", json=household).json()["id"]
    for asset, kind in (("PC-1", "laptop"), ("PC-2", "desktop"), ("D-3", "drive")):
        station.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": asset, "kind": kind,
                                                              "received_at": "2026-03-14T08:00Z"})  # fmt: skip
    d = destroy(kit, "PC-2", "shred")
    assert (
        station.put(
            f"/api/v1/destructions/{d.record_id}", content=d.json_path.read_bytes(), headers=JSON
        ).status_code
        == 201
    )
    put_report(station, report("PC-1", None, ["S1"]))
    put_report(station, report("PC-2", None, [d.record.media.serial or ""], "repair"))
    erased = put_cert(station, kit, asset="PC-1", serial="S1")
    failed = put_cert(station, kit, asset="PC-2", serial=d.record.media.serial, success=False)
    station.post("/api/v1/events", json={"asset_number": "PC-2", "kind": "repaired", "detail": "new battery"})
    for asset, outcome, detail in (("PC-1", "reused", "association"), ("PC-2", "recycled", "Ecosystem")):
        staff.post(
            "/api/v1/events",
            json={"asset_number": asset, "kind": "outcome", "outcome": outcome, "detail": detail},
        )

    export = station.get(f"/api/v1/lots/{lot_id}/devicehub")
    assert export.status_code == 200, export.text
    doc = export.json()
    assert (doc["type"], doc["name"], doc["closed"], doc["software"]) == (
        "Lot",
        LOT["reference"],
        False,
        "Tabula",
    )
    assert "household" in doc["description"] and "Jeanne" not in export.text  # a household donor is a person
    snaps = {s["device"]["tag"]: s for s in doc["devices"]}
    assert set(snaps) == {"PC-1", "PC-2", "D-3"}
    pc1, pc2 = snaps["PC-1"], snaps["PC-2"]
    assert pc1["device"]["type"] == "Laptop" and pc1["device"]["manufacturer"] == "Lenovo"
    assert [a["type"] for a in pc1["device"]["actions"]] == ["Donate"]
    assert pc1["device"]["actions"][0]["description"] == "reused: association"
    assert [a["tabula"]["certificate_id"] for a in pc1["components"][0]["actions"]] == [erased]
    assert pc2["device"]["type"] == "Desktop"
    assert [a["type"] for a in pc2["device"]["actions"]] == ["ToRepair", "Repair", "DisposeProduct"]
    actions = {a["tabula"]["certificate_id"]: a for a in pc2["components"][0]["actions"]}
    assert actions[failed]["type"] == "EraseBasic" and actions[failed]["severity"] == "Error"
    physical = actions[d.record_id]
    assert (physical["type"], physical["method"], physical["tabula"]["kind"]) == (
        "ErasePhysical",
        "Shred",
        "destruction",
    )
    assert snaps["D-3"]["device"]["type"] == "HardDrive" and snaps["D-3"]["components"] == []
    assert station.get(f"/api/v1/lots/{lot_id}/devicehub").json()["uuid"] == doc["uuid"]  # stable

    # the machine snapshot of a registered device carries its type and events too
    snap = station.get("/api/v1/machines/PC-2/snapshot").json()
    assert (
        snap["device"]["type"] == "Desktop"
        and [a["type"] for a in snap["device"]["actions"]][-1] == "DisposeProduct"
    )
    single = httpx.get(f"{hub_url}/api/v1/certificates/{d.record_id}/snapshot").json()
    assert single["components"][0]["actions"][0]["type"] == "ErasePhysical"
