"""Network statistics (``/stats``, ``/api/v1/stats``, ``/api/v1/stats.csv``) over real HTTP, SQLite and
PostgreSQL: the counts match what was recorded, scopes and roles hold, no script in the page."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx

from hub.service import Hub
from tests.test_hub_lots import LOT, client, put_cert, staff_token
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


def _lot(
    hub_url: str, staff: httpx.Client, station: httpx.Client, ref: str, devices: list[tuple[str, str, str]]
) -> None:
    lot_id = staff.post("/api/v1/lots", json={**LOT, "reference": ref}).json()["id"]
    for asset, kind, received in devices:
        r = station.post(f"/api/v1/lots/{lot_id}/devices",
                         json={"asset_number": asset, "kind": kind, "received_at": received})  # fmt: skip
        assert r.status_code == 201, r.text


def test_statistics_count_what_was_recorded(
    hub: Hub, hub_url: str, org: Org, kit: Kit, tmp_path: Path
) -> None:
    staff = client(hub_url, staff_token(hub, org))
    station = client(hub_url, kit.token)
    _lot(hub_url, staff, station, "A", [("A-1", "laptop", "2026-01-10T09:00Z"), ("A-2", "laptop", "2026-01-20T09:00Z"),
                                        ("A-3", "desktop", "2026-02-05T09:00Z")])  # fmt: skip
    outcomes = [
        ("A-1", "reused", "student", "2026-01-20T09:00Z"),
        ("A-2", "recycled", "Ecosystem", "2026-02-19T09:00Z"),
    ]
    for asset, outcome, detail, at in outcomes:
        r = staff.post("/api/v1/events", json={"asset_number": asset, "kind": "outcome", "outcome": outcome,
                                                "detail": detail, "at": at})  # fmt: skip
        assert r.status_code == 201, r.text
    model = kit.certificate().media.model
    kit.sequence -= 1  # that certificate was only looked at
    for ok in (True, True, True, False):
        put_cert(station, kit, asset="A-1", success=ok)
    # a second organisation, with a coordinator of its own
    other = make_org(tmp_path / "b", "Other")
    hub.add_organisation("Other", other.pem)
    kit_b = enrolled(hub, other, make_kit(tmp_path / "b", other, "bench-b"))
    _lot(
        hub_url,
        client(hub_url, staff_token(hub, other)),
        client(hub_url, kit_b.token),
        "B",
        [("B-1", "phone", "2026-01-11T09:00Z")],
    )

    network = client(hub_url, staff_token(hub, None, "coordinator"))
    st = network.get("/api/v1/stats").json()
    assert st["scope"] == "network"
    per_month = {(r["month"], r["workshop"]): r["devices"] for r in st["devices_per_month"]}
    assert per_month == {
        ("2026-01", "Atelier Réemploi"): 2,
        ("2026-02", "Atelier Réemploi"): 1,
        ("2026-01", "Other"): 1,
    }
    assert st["outcomes"] == {"reused": 1, "sold": 0, "recycled": 1, "destroyed": 0, "none": 2}
    assert st["nist_levels"] == {"clear": 3, "none": 1}
    rate = st["erasure_failure_rate_by_model"][0]
    assert (rate["model"], rate["attempts"], rate["failures"], rate["rate"]) == (model, 4, 1, 0.25)
    assert st["median_days_intake_to_outcome"] == 20.0  # 10 and 30 days
    assert st["impact"]["network"]["network"]["devices"] == 1
    assert st["impact"]["network"]["network"]["by_kind"]["laptop"]["devices"] == 1
    assert (
        st["impact"]["lot"]["Atelier Réemploi / A"]["co2e_g"]
        == st["impact"]["network"]["network"]["co2e_g"]
        > 0
    )

    rows = list(csv.DictReader(io.StringIO(network.get("/api/v1/stats.csv").text)))
    got = {(r["workshop"], r["month"]): int(r["value"]) for r in rows if r["metric"] == "devices_per_month"}
    assert got == {(w, m): n for (m, w), n in per_month.items()}
    assert {r["key"]: int(r["value"]) for r in rows if r["metric"] == "outcome"} == st["outcomes"]

    own = client(hub_url, staff_token(hub, other, "coordinator")).get("/api/v1/stats").json()
    assert own["scope"] == "Other" and own["outcomes"]["none"] == 1 and own["nist_levels"] == {}
    assert staff.get("/api/v1/stats").status_code == 403 and station.get("/api/v1/stats").status_code == 403

    token = staff_token(hub, None, "coordinator", "Réseau")
    for lang, words in (("fr", "Appareils reçus par mois"), ("en", "Devices received per month")):
        page = httpx.get(f"{hub_url}/stats?lang={lang}", auth=("c", token))
        assert page.status_code == 200 and words in page.text and page.text.count("<svg") == 4
        assert "<script" not in page.text and "2026-01" in page.text
    assert httpx.get(f"{hub_url}/stats").status_code == 401
