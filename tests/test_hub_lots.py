"""Donation lots over real HTTP (uvicorn on loopback), SQLite and PostgreSQL: staff and station
tokens, devices, events, progress computed from reports and signed records, refusals with reasons."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import lots
from hub.cli import main as hub_main
from hub.errors import AdminError
from hub.service import Hub
from hub.staff import add_staff
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


def staff_token(hub: Hub, org: Org | None, role: str = "staff", name: str = "Camille") -> str:
    _, token = add_staff(hub.session(), name, role, org.key.kid if org else None)
    return token


def client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


LOT = {"reference": "2026/MAIRIE-03", "donor_name": "Mairie de Lyon", "donor_kind": "public_body",
       "received_on": "2026-03-14", "contact": "dsi@mairie.example"}  # fmt: skip


def report(asset: str, lot: str | None, serials: list[str], verdict: str = "reuse") -> bytes:
    """A diagnostics report as ``station diagnose`` writes it, with the asset number and lot."""
    doc: dict[str, Any] = {
        "schema": 1,
        "mode": "quick",
        "started_at": "2026-03-15T09:00:00Z",
        "finished_at": "2026-03-15T09:05:00Z",
        "overall": verdict,
        "machine": {
            "verdict": verdict,
            "reasons": [] if verdict == "reuse" else [f"{verdict}: battery worn"],
        },
        "inventory": {
            "system": {"manufacturer": "Lenovo", "model": "ThinkPad T480", "serial": f"PF-{asset}"},
            "storage": [
                {"path": f"/dev/sd{i}", "serial": s, "model": "SSD 256"} for i, s in enumerate(serials)
            ],
        },
        "asset_number": asset,
    }
    if lot is not None:
        doc["lot"] = lot
    return json.dumps(doc).encode()


def put_report(c: httpx.Client, body: bytes) -> None:
    r = c.put(f"/api/v1/reports/{hashlib.sha256(body).hexdigest()}", content=body,
              headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 201, r.text


def put_cert(c: httpx.Client, kit: Kit, **kw: Any) -> str:
    cert = kit.certificate(**kw)
    r = c.put(f"/api/v1/certificates/{cert.certificate_id}", content=kit.sign(cert),
              headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 201, r.text
    return cert.certificate_id


def test_a_lot_from_intake_to_outcome(hub: Hub, hub_url: str, org: Org, kit: Kit) -> None:
    staff = client(hub_url, staff_token(hub, org))
    station = client(hub_url, kit.token)
    r = staff.post("/api/v1/lots", json=LOT)
    assert r.status_code == 201, r.text
    lot_id = r.json()["id"]
    assert r.json()["contact"] == "dsi@mairie.example"
    for asset in ("PC-1", "PC-2", "PC-3"):
        r = station.post(f"/api/v1/lots/{lot_id}/devices",
                         json={"asset_number": asset, "kind": "laptop", "received_at": "2026-03-14T10:00Z"})  # fmt: skip
        assert r.status_code == 201, r.text
    again = station.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": "PC-1", "kind": "laptop"})
    assert again.status_code == 200 and again.json()["status"] == "already_stored"
    # PC-1: one drive, erased.  PC-2: two drives, one erased, one with nothing (flagged).
    # PC-3: its erasure failed; no proof.
    put_report(station, report("PC-1", LOT["reference"], ["S1"]))
    put_report(station, report("PC-2", None, ["S2a", "S2b"], "repair"))
    put_report(station, report("PC-3", LOT["reference"], ["S3"], "recycle"))
    c1 = put_cert(station, kit, asset="PC-1", serial="S1")
    put_cert(station, kit, asset="PC-2", serial="S2a")
    put_cert(station, kit, asset="PC-3", serial="S3", success=False)
    assert (
        station.post("/api/v1/events", json={"asset_number": "PC-2", "kind": "repaired"}).status_code == 201
    )
    r = staff.post("/api/v1/events", json={"asset_number": "PC-1", "kind": "outcome", "outcome": "reused",
                                            "detail": "student"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = staff.post("/api/v1/events", json={"asset_number": "PC-3", "kind": "outcome", "outcome": "recycled",
                                            "detail": "Ecosystem"})  # fmt: skip
    assert r.status_code == 201, r.text

    view = station.get(f"/api/v1/lots/{lot_id}").json()
    assert "contact" not in view["lot"]  # a station does not see the donor contact
    counts = view["counts"]
    assert (counts["devices"], counts["diagnosed"], counts["data_cleared"], counts["repaired"]) == (
        3,
        3,
        1,
        1,
    )
    assert counts["outcomes"] == {"reused": 1, "sold": 0, "recycled": 1, "destroyed": 0}
    assert counts["verdicts"] == {"reuse": 1, "repair": 1, "recycle": 1}
    assert counts["devices_missing_proof"] == ["PC-2", "PC-3"]
    assert counts["reused_by_kind"] == {"laptop": 1}
    devices = {d["asset_number"]: d for d in view["devices"]}
    pc1, pc2 = devices["PC-1"], devices["PC-2"]
    assert pc1["data_cleared"] and pc1["drives"][0]["proof"]["id"] == c1
    assert pc1["manufacturer"] == "Lenovo" and pc1["model"] == "ThinkPad T480"
    assert [d["cleared"] for d in pc2["drives"]] == [True, False]
    assert "S2b" in pc2["not_cleared_because"]
    assert pc2["verdict"] == "repair" and pc2["verdict_reasons"] == ["repair: battery worn"]
    events = [e["event"] for e in pc1["timeline"]]
    assert events[0] == "received" and "diagnosed" in events and "drive_erased" in events
    assert events[-1] == "outcome"

    found = station.get("/api/v1/lots", params={"reference": LOT["reference"]})
    assert found.status_code == 200 and found.json()["devices"] == 3
    dev = station.get("/api/v1/devices", params={"asset_number": "PC-3"}).json()
    assert dev["lot"]["reference"] == LOT["reference"] and not dev["device"]["data_cleared"]
    assert dev["device"]["drives"][0]["records"][0]["kind"] == "failure_report"


def test_a_record_naming_another_lot_is_not_counted(hub: Hub, hub_url: str, org: Org, kit: Kit) -> None:
    staff = client(hub_url, staff_token(hub, org))
    station = client(hub_url, kit.token)
    lot_id = staff.post("/api/v1/lots", json=LOT).json()["id"]
    station.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": "PC-9", "kind": "desktop"})
    put_report(station, report("PC-9", "OTHER-LOT", ["S9"]))
    dev = station.get("/api/v1/devices", params={"asset_number": "PC-9"}).json()["device"]
    assert dev["diagnosed_at"] is None and "OTHER-LOT" in dev["problems"][0]
    assert dev["not_cleared_because"].startswith("no diagnostics inventory")


def test_roles_and_organisations_are_enforced(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    other = make_org(tmp_path / "other", "Other")
    hub.add_organisation("Other", other.pem)
    station = client(hub_url, kit.token)
    r = station.post("/api/v1/lots", json=LOT)
    assert r.status_code == 403 and r.json()["error"] == "wrong_role"
    network = client(hub_url, staff_token(hub, None, "coordinator"))
    assert network.post("/api/v1/lots", json=LOT).json()["error"] == "wrong_role"
    lot_id = client(hub_url, staff_token(hub, org)).post("/api/v1/lots", json=LOT).json()["id"]
    foreign = client(hub_url, staff_token(hub, other))
    assert foreign.get(f"/api/v1/lots/{lot_id}").status_code == 404
    assert foreign.get("/api/v1/lots", params={"reference": LOT["reference"]}).status_code == 404
    assert foreign.post(f"/api/v1/lots/{lot_id}/close").status_code == 404
    # the other organisation may use the same reference: references are unique per organisation
    assert foreign.post("/api/v1/lots", json=LOT).status_code == 201
    assert client(hub_url, "nope").get("/api/v1/lots", params={"reference": "X"}).status_code == 401
    with pytest.raises(AdminError):
        add_staff(hub.session(), "x", "staff", None)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/lots", {**LOT, "reference": "bad ref!"}, "bad_reference"),
        ("/api/v1/lots", {**LOT, "donor_kind": "alien"}, "bad_donor_kind"),
        ("/api/v1/lots", {**LOT, "received_on": "14/03/2026"}, "bad_received_on"),
        ("/api/v1/lots", {**LOT, "donor_name": "x" * 201}, "bad_donor_name"),
        ("/api/v1/lots", [1, 2], "malformed"),
        ("/api/v1/events", {"asset_number": "PC-1", "kind": "outcome", "outcome": "reused", "detail": "Jean Dupont"},
         "bad_detail"),
        ("/api/v1/events", {"asset_number": "PC-1", "kind": "outcome", "outcome": "recycled"}, "bad_detail"),
        ("/api/v1/events", {"asset_number": "PC-1", "kind": "stolen"}, "bad_kind"),
        ("/api/v1/events", {"asset_number": "PC-1", "kind": "repaired", "at": "2999-01-01"}, "bad_at"),
    ],
)  # fmt: skip
def test_bad_input_is_a_422_naming_the_field(
    hub: Hub, hub_url: str, org: Org, kit: Kit, path: str, body: Any, code: str
) -> None:
    staff = client(hub_url, staff_token(hub, org))
    lot_id = staff.post("/api/v1/lots", json={**LOT, "reference": "L1"}).json()["id"]
    staff.post(f"/api/v1/lots/{lot_id}/devices", json={"asset_number": "PC-1", "kind": "laptop"})
    r = staff.post(path, json=body)
    assert r.status_code == 422 and r.json()["error"] == code, r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_conflicts_closed_lots_and_retention(hub: Hub, hub_url: str, org: Org, db_url: str) -> None:
    staff = client(hub_url, staff_token(hub, org))
    a = staff.post("/api/v1/lots", json=LOT).json()["id"]
    assert staff.post("/api/v1/lots", json=LOT).json()["error"] == "lot_exists"
    b = staff.post("/api/v1/lots", json={**LOT, "reference": "B"}).json()["id"]
    staff.post(f"/api/v1/lots/{a}/devices", json={"asset_number": "PC-1", "kind": "laptop"})
    r = staff.post(f"/api/v1/lots/{b}/devices", json={"asset_number": "PC-1", "kind": "laptop"})
    assert r.status_code == 409 and r.json()["error"] == "asset_in_other_lot"
    assert staff.post(f"/api/v1/lots/{a}/close").json()["closed_at"] is not None
    r = staff.post("/api/v1/events", json={"asset_number": "PC-1", "kind": "repaired"})
    assert r.status_code == 409 and r.json()["error"] == "lot_closed"
    # retention: the contact of a lot closed long enough ago is erased, the others kept
    assert [x.reference for x in lots.erase_contacts(hub, 30)] == []
    erased = lots.erase_contacts(hub, 30, now=datetime.now(UTC) + timedelta(days=31))
    assert [x.reference for x in erased] == [LOT["reference"]]
    got = staff.get(f"/api/v1/lots/{a}").json()["lot"]
    assert got["contact"] is None and got["contact_erased_at"] is not None
    assert staff.get(f"/api/v1/lots/{b}").json()["lot"]["contact"] == LOT["contact"]
    assert hub_main(["retention", "--db", db_url, "--days", "0"]) == 0


def test_staff_tokens_from_the_cli(hub: Hub, hub_url: str, org: Org, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "staff.token"
    assert hub_main(["staff", "add", "--db", db_url, "--name", "Desk", "--role", "staff",
                     "--org", org.key.kid, "--token-out", str(out)]) == 0  # fmt: skip
    token = out.read_text().strip()
    assert len(token) >= 43 and token not in json.dumps(hub.stations())
    desk = client(hub_url, token)
    assert desk.post("/api/v1/lots", json=LOT).status_code == 201
    basic = httpx.get(f"{hub_url}/api/v1/lots", params={"reference": LOT["reference"]}, auth=("any", token))
    assert basic.status_code == 200  # HTTP Basic with the token as password (browsers, staff pages)
    assert hub_main(["staff", "revoke", "--db", db_url, "1"]) == 0
    r = desk.get("/api/v1/lots", params={"reference": LOT["reference"]})
    assert r.status_code == 401 and r.json()["error"] == "token_revoked"
    assert hub_main(["staff", "list", "--db", db_url]) == 0


def test_the_donor_page_shows_that_lot_and_nothing_else(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    staff = client(hub_url, staff_token(hub, org))
    station = client(hub_url, kit.token)
    a = staff.post("/api/v1/lots", json=LOT).json()["id"]
    b = staff.post("/api/v1/lots", json={**LOT, "reference": "LOT-B", "donor_name": "Acme SA",
                                         "donor_kind": "company", "contact": "it@acme.example"}).json()["id"]  # fmt: skip
    for lot, asset in ((a, "A-1"), (a, "A-2"), (b, "B-SECRET-1")):
        station.post(f"/api/v1/lots/{lot}/devices", json={"asset_number": asset, "kind": "laptop"})
    put_report(station, report("A-1", LOT["reference"], ["SER-A1"]))
    put_cert(station, kit, asset="A-1", serial="SER-A1")
    staff.post(
        "/api/v1/events",
        json={"asset_number": "A-1", "kind": "outcome", "outcome": "reused", "detail": "student"},
    )
    link = staff.post(f"/api/v1/lots/{a}/donor-link")
    assert link.status_code == 201
    token = link.json()["token"]
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    assert token not in json.dumps(staff.get(f"/api/v1/lots/{a}").json())  # only its hash is kept

    en = httpx.get(f"{hub_url}{link.json()['url']}", headers={"Accept-Language": "de, en;q=0.8, fr;q=0.5"})
    assert en.status_code == 200 and '<html lang="en">' in en.text
    assert "A-1" in en.text and "A-2" in en.text and LOT["reference"] in en.text
    assert "Reused" in en.text and "kg CO2e avoided" in en.text
    for secret in (
        "B-SECRET-1",
        "LOT-B",
        "Acme",
        LOT["contact"],
        "it@acme",
        "SER-A1",
        "Test",
        kit.station_id,
    ):
        assert secret not in en.text, secret
    assert "<script" not in en.text and "script-src" not in en.headers["content-security-policy"]
    assert (
        en.headers["cache-control"] == "private, no-store" and en.headers["referrer-policy"] == "no-referrer"
    )
    fr = httpx.get(f"{hub_url}/donor/{token}", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"})
    assert '<html lang="fr">' in fr.text and "Réemployés" in fr.text and "kg CO2e évités" in fr.text
    assert '<html lang="en">' in httpx.get(f"{hub_url}/donor/{token}?lang=en").text

    # a new link replaces the old one; a withdrawn link is gone; a guessed one never existed
    token2 = staff.post(f"/api/v1/lots/{a}/donor-link").json()["token"]
    assert httpx.get(f"{hub_url}/donor/{token}").status_code == 404
    assert httpx.get(f"{hub_url}/donor/{token2}").status_code == 200
    assert staff.delete(f"/api/v1/lots/{a}/donor-link").json()["donor_link"] is False
    gone = httpx.get(f"{hub_url}/donor/{token2}?lang=fr")
    assert gone.status_code == 404 and "retiré" in gone.text
    assert httpx.get(f"{hub_url}/donor/{'x' * 5000}").status_code == 404
    assert station.post(f"/api/v1/lots/{a}/donor-link").status_code == 403  # staff only


def test_the_staff_page_of_a_lot(hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path) -> None:
    token = staff_token(hub, org)
    staff = client(hub_url, token)
    station = client(hub_url, kit.token)
    a = staff.post("/api/v1/lots", json=LOT).json()["id"]
    station.post(f"/api/v1/lots/{a}/devices", json={"asset_number": "A-1", "kind": "desktop"})
    put_report(station, report("A-1", None, ["S-1", "S-2"], "repair"))
    put_cert(station, kit, asset="A-1", serial="S-1")
    anonymous = httpx.get(f"{hub_url}/lots/{a}")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    page = httpx.get(f"{hub_url}/lots/{a}?lang=fr", auth=("staff", token))
    assert page.status_code == 200 and '<html lang="fr">' in page.text
    assert "Appareils sans preuve" in page.text and "S-2" in page.text and LOT["contact"] in page.text
    assert "réparation" in page.text and "<script" not in page.text
    en = httpx.get(f"{hub_url}/lots/{a}", headers={"Authorization": f"Bearer {token}"})
    assert "Devices missing proof" in en.text and "Mairie de Lyon" in en.text
    other = make_org(tmp_path / "o2", "Other")
    hub.add_organisation("Other", other.pem)
    assert httpx.get(f"{hub_url}/lots/{a}", auth=("x", staff_token(hub, other))).status_code == 404


def test_drives_without_a_serial_match_only_by_elimination() -> None:
    from hub.lotfacts import Drive, RecordFact, drive_states

    def rec(serial: str | None, ok: bool = True) -> RecordFact:
        kind = "certificate" if ok else "failure_report"
        return RecordFact("id-" + str(serial), kind, ok, "clear" if ok else "none", serial, None, None,
                          "2026-03-15T10:00:00Z", None, "00" * 32)  # fmt: skip

    one = drive_states((Drive(None, None), Drive("S1", None)), [rec(None), rec("S1")])
    assert [d.proof is not None for d in one] == [True, True] and len(one) == 2
    two = drive_states((Drive(None, None), Drive(None, None)), [rec(None)])
    assert [d.proof is not None for d in two] == [False, False, True]  # unmatched: listed apart
    assert not two[2].in_inventory


HOSTILE: list[tuple[str, str, Any]] = [
    ("POST", "/api/v1/lots", {**LOT, "donor_name": "a\u0000b"}),
    ("POST", "/api/v1/lots", {**LOT, "donor_name": "\ud800"}),
    ("POST", "/api/v1/lots", {**LOT, "received_on": 20260314}),
    ("POST", "/api/v1/lots", {**LOT, "reference": None}),
    ("POST", "/api/v1/lots", "x" * 20000),
    ("POST", "/api/v1/lots", b"[" * 5000),
    ("POST", "/api/v1/lots", b"\xff\xfe"),
    ("POST", "/api/v1/lots", b'{"reference": 1' + b"0" * 5000 + b"}"),
    ("GET", "/api/v1/devices?asset_number=%00", None),
    ("GET", "/api/v1/devices?asset_number=%ED%A0%80", None),
    ("GET", "/api/v1/lots?reference=%00", None),
    ("GET", "/api/v1/lots/99999999999999999999", None),
    ("GET", "/api/v1/lots/-1", None),
    ("GET", "/api/v1/lots/999999999999", None),
    ("GET", "/api/v1/lots/2147483648", None),
    ("GET", "/api/v1/lots/١٢", None),
    ("GET", "/lots/2147483648", None),
    ("POST", "/api/v1/events", {"asset_number": "\ud800", "kind": "repaired"}),
    ("POST", "/api/v1/events", {"asset_number": "PC-1", "kind": "repaired", "at": "9" * 50}),
    ("POST", "/api/v1/events", {"asset_number": "PC-1", "kind": "outcome", "outcome": ["reused"]}),
    ("POST", "/api/v1/lots/1/devices", {"asset_number": "x" * 201, "kind": "laptop"}),
    ("POST", "/api/v1/lots/1/devices", {"asset_number": "PC-9", "kind": "laptop", "serial": "\u0000"}),
    ("GET", "/donor/%00", None),
    ("GET", "/lots/abc", None),
]


@pytest.mark.parametrize(("method", "path", "body"), HOSTILE)
def test_hostile_input_is_a_4xx_never_a_500(
    hub: Hub, hub_url: str, org: Org, method: str, path: str, body: Any
) -> None:
    staff = client(hub_url, staff_token(hub, org))
    staff.post("/api/v1/lots", json=LOT)
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    r = staff.request(method, path, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if r.headers["content-type"].startswith("application/json"):
        assert r.json()["error"] and r.json()["message"]
