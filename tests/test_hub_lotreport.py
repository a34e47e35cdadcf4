"""``station-hub lot-report``: a lot's report built from the hub, signed with the organisation key,
verified offline by ``station verify`` with the certificates and destruction records it lists."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from certs.cli import main as station_main
from certs.impact import load_factors
from hub.cli import main as hub_main
from hub.service import Hub
from tests.test_hub_destructions import JSON, destroy
from tests.test_hub_lots import LOT, client, put_report, report, staff_token
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


def upload(c: httpx.Client, kit: Kit, **kw: Any) -> str:
    """A signed certificate uploaded, and kept in the station's folder as ``station erase`` keeps it."""
    cert = kit.certificate(**kw)
    body = kit.sign(cert)
    (kit.cert_dir / f"{cert.certificate_id}.json").write_bytes(body)
    r = c.put(f"/api/v1/certificates/{cert.certificate_id}", content=body, headers=JSON)
    assert r.status_code == 201, r.text
    return cert.certificate_id


def _lot(hub: Hub, hub_url: str, org: Org, kit: Kit) -> dict[str, str]:
    staff, station = client(hub_url, staff_token(hub, org)), client(hub_url, kit.token)
    lot_id = staff.post("/api/v1/lots", json={**LOT, "reference": "LOT-1"}).json()["id"]
    for asset, kind in (("PC-1", "laptop"), ("PC-2", "desktop"), ("PC-3", "laptop")):
        station.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": asset, "kind": kind,
                                                              "received_at": "2026-03-14T08:00Z"})  # fmt: skip
    d = destroy(kit, "PC-2")
    serial = d.record.media.serial or ""
    assert (
        station.put(
            f"/api/v1/destructions/{d.record_id}", content=d.json_path.read_bytes(), headers=JSON
        ).status_code
        == 201
    )
    put_report(station, report("PC-1", "LOT-1", ["S1"]))
    put_report(station, report("PC-2", "LOT-1", [serial], "recycle"))
    ids = {"erased": upload(station, kit, asset="PC-1", serial="S1"),
           "failed": upload(station, kit, asset="PC-2", serial=serial, success=False), "destroyed": d.record_id}  # fmt: skip
    for asset, outcome, detail in (("PC-1", "reused", "student"), ("PC-2", "recycled", "Ecosystem")):
        r = staff.post(
            "/api/v1/events",
            json={"asset_number": asset, "kind": "outcome", "outcome": outcome, "detail": detail},
        )
        assert r.status_code == 201, r.text
    staff.post(f"/api/v1/lots/{lot_id}/close")
    return ids


def test_a_lot_report_from_the_hub_verifies_offline(
    hub: Hub,
    hub_url: str,
    org: Org,
    kit: Kit,
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = _lot(hub, hub_url, org, kit)
    out = tmp_path / "reports"
    args = ["lot-report", "--db", db_url, "LOT-1", "--org-keys", str(org.key_dir), "--out", str(out)]
    assert hub_main([*args, "--lang", "fr", "--new-donor-link", hub_url]) == 0
    json_path = next(out.glob("*.json"))
    assert next(out.glob("*.pdf")).read_bytes().startswith(b"%PDF")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "org.pem").write_bytes(org.pem)
    capsys.readouterr()
    code = station_main(
        ["verify", "--trust", str(trust), "--certs", str(kit.cert_dir), str(json_path), "--json"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, json.dumps(doc["lot_reports"])[:2000]
    lot = doc["lot_reports"][0]
    assert lot["ok"] and {r["id"] for r in lot["records"]} == set(ids.values())
    assert all(r["ok"] and r["found_in"] == "folder" for r in lot["records"])
    # what the report says, read back from the signed payload
    verdict = _payload(json_path)
    devices = {d["asset"]: d for d in verdict["devices"]}
    assert set(devices) == {"PC-1", "PC-2", "PC-3"}
    assert devices["PC-1"]["data_cleared"] and devices["PC-1"]["drives"][0]["certificate_id"] == ids["erased"]
    pc2 = devices["PC-2"]["drives"][0]
    assert devices["PC-2"]["data_cleared"] and pc2["destruction_id"] == ids["destroyed"]
    assert pc2["certificate_id"] == ids["failed"] and pc2["result"] == "failed" and pc2["level"] == "none"
    assert not devices["PC-3"]["data_cleared"] and devices["PC-3"]["outcome"] is None
    assert devices["PC-1"]["outcome"] == {
        "kind": "reused",
        "detail": "student",
        "date": devices["PC-1"]["outcome"]["date"],
    }
    expected = load_factors().impact({"laptop": 1}).to_json()
    assert verdict["impact"]["figures"] == expected and expected["co2e_g"] > 0
    assert verdict["lot"]["closed"] is not None and "contact" not in json.dumps(verdict)
    assert LOT["contact"] not in json_path.read_text()
    assert httpx.get(verdict["donor_page"]).status_code == 200  # the QR code's link works

    # a donor link that is not the lot's current one is refused; English works too
    assert hub_main([*args, "--lang", "en", "--donor-url", f"{hub_url}/donor/{'A' * 43}"]) == 2
    assert hub_main([*args, "--lang", "en", "--donor-url", verdict["donor_page"]]) == 0
    assert len(list(out.glob("*.pdf"))) == 2


def _payload(path: Path) -> dict[str, Any]:
    env = json.loads(path.read_bytes())
    data = env["payload"] + "=" * (-len(env["payload"]) % 4)
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(data))
    return doc
