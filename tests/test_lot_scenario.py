"""Issue 15's done-when, end to end: a donation lot of 20 devices through the real station and hub.

Intake (the staff create the lot, the station registers 20 devices), diagnostics (``station diagnose``
runs for real on this machine once; its report is then given to each of the 20 simulated machines
with that machine's asset number, lot, drive and verdict), erasure (``station erase`` on 20 loop
devices, Clear with one pass; one drive, served by tests/faultfs.py, refuses writes: its erasure fails
and ``station destroy`` records its destruction), upload with the station's own sync client, repair
and outcomes (API), then:

* the lot shows 20 devices received, diagnosed and data cleared (the failed drive by its
  destruction record), with their outcomes;
* the donor page shows that lot and nothing of another lot, in French and English;
* the lot report (``station-hub lot-report``, French and English) verifies offline with
  ``station verify --certs`` and lists every device, with the impact of the reused devices;
* ``/stats`` counts match, in JSON and in the French and English pages.

The lot reference and asset number are given through the hub's API and ``station erase --asset``
(the station's ``--lot`` is issue 15's STATION part).  SQLite only: the PostgreSQL paths are the
hub tests'.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from certs.cli import main as certs_main
from certs.impact import load_factors
from hub.app import create_app
from hub.cli import main as hub_main
from hub.service import Hub
from hub.staff import add_staff
from hub.testing import serve_in_thread
from station.cli import main as station_main
from station.sync import status
from station.sync.drain import drain
from station.sync.outbox import enqueue_report, reconcile
from tests.faultfs import fault_disk, have_fuse
from tests.loopdev import attach, detach, loop_device
from tests.test_sync_support import Kit, Org, enrolled, make_kit, make_org

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not have_fuse() and not os.environ.get("CI"), reason="needs /dev/fuse, fusepy and libfuse2"
    ),
]

MIB = 1 << 20
REF = "2026/DON-20"
N = 20
RECEIVED = "2026-10-01T09:00:00Z"
DONE = "2026-10-11T09:00:00Z"  # every outcome 10 days after intake
BENEFICIARIES = ("household", "student", "association", "job_seeker")


def kind_of(i: int) -> str:
    return "desktop" if i % 4 == 0 else "laptop"


def verdict_of(i: int) -> str:
    return "recycle" if i >= 19 else ("repair" if i % 4 == 3 else "reuse")


def outcome_of(i: int) -> tuple[str, str]:
    if i == 19:
        return "destroyed", "casing crushed"
    if i == 20:
        return "recycled", "Ecosystem"
    if i in (1, 2):
        return "sold", ""
    return "reused", BENEFICIARIES[i % len(BENEFICIARIES)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Hub, str, Org, Kit]]:
    hub = Hub(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    org = make_org(tmp_path, "Atelier Réemploi")
    hub.add_organisation("Atelier Réemploi", org.pem)
    kit = enrolled(hub, org, make_kit(tmp_path, org, "bench-1"))
    with serve_in_thread(create_app(hub)) as url:
        yield hub, url, org, kit
    hub.engine.dispose()


def token(hub: Hub, org: Org | None, role: str) -> str:
    return add_staff(hub.session(), f"{role} desk", role, org.key.kid if org else None)[1]


def run_station(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = station_main(args)
    return code, capsys.readouterr().out


def erase(dev: str, asset: str, capsys: pytest.CaptureFixture[str]) -> int:
    args = [
        "erase",
        dev,
        "--method",
        "zero",
        "--yes",
        "--include-loop",
        "--asset",
        asset,
        "--donor",
        "Mairie",
    ]
    code, _ = run_station([*args, "--technician", "Camille Martin", "--organisation", "Atelier"], capsys)
    return code


def diagnosis(dev: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``station diagnose`` on this machine (quick, the loop drive as the drive)."""
    _, out = run_station(["diagnose", "--quick", "--json", "--no-read-test", "--device", dev], capsys)
    doc: dict[str, Any] = json.loads(out)
    assert doc["inventory"] is not None and doc["drives"][0]["device"] == dev
    return doc


def machine_report(base: dict[str, Any], i: int, dev: str, home: Path) -> Path:
    """The real report, as simulated machine ``i`` would have it: its asset, lot, drive, verdict."""
    doc = json.loads(json.dumps(base))
    verdict = verdict_of(i)
    doc.update(asset_number=f"PC-{i:02d}", lot=REF, overall=verdict)
    doc["machine"] = {"verdict": verdict, "reasons": [] if verdict == "reuse" else [f"{verdict}: simulated"],
                      "unknowns": []}  # fmt: skip
    doc["inventory"]["storage"] = [{"path": dev, "size_bytes": MIB, "serial": None, "model": None}]
    path = home / "reports" / f"PC-{i:02d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def erase_all(kit: Kit, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Diagnose once, erase 19 loop drives and one failing drive, destroy that one."""
    loops = tmp_path / "loops"
    loops.mkdir()
    with loop_device(loops, MIB, name="d01.img") as dev:
        base = diagnosis(dev, capsys)
        for i in range(1, N):
            if i > 1:
                with loop_device(loops, MIB, name=f"d{i:02d}.img", fill=b"\x42") as other:
                    assert erase(other, f"PC-{i:02d}", capsys) == 0
                    enqueue_report(machine_report(base, i, other, kit.home), home=kit.home)
            else:
                assert erase(dev, "PC-01", capsys) == 0
                enqueue_report(machine_report(base, 1, dev, kit.home), home=kit.home)
    with fault_disk(tmp_path, MIB, fill=b"\x42") as fd:
        fd.set_faults([{"op": "write", "mode": "eio", "start": 256 * 1024, "end": 260 * 1024}])
        dev = attach(fd.image)
        try:
            assert (
                erase(dev, f"PC-{N}", capsys) != 0
            )  # the erasure fails: a failure report, never a certificate
            enqueue_report(machine_report(base, N, dev, kit.home), home=kit.home)
        finally:
            detach(dev)
    failed_job = max((kit.home / "jobs").iterdir(), key=lambda p: p.stat().st_mtime)
    code, out = run_station(
        ["destroy", str(failed_job), "--method", "shred", "--by", "Camille Martin", "--json"], capsys
    )
    assert code == 0, out
    return base


def test_a_lot_of_twenty_devices_from_intake_to_signed_report(
    world: tuple[Hub, str, Org, Kit],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub, url, org, kit = world
    monkeypatch.setenv("TABULA_HOME", str(kit.home))
    staff = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token(hub, org, 'staff')}"}, timeout=30
    )
    station = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {kit.token}"}, timeout=30)

    # intake: the lot, and another one the donor page must not show
    lot = {"reference": REF, "donor_name": "Mairie de Lyon", "donor_kind": "public_body",
           "received_on": RECEIVED[:10], "contact": "dsi@mairie.example"}  # fmt: skip
    lot_id = staff.post("/api/v1/lots", json=lot).json()["id"]
    other = staff.post("/api/v1/lots", json={**lot, "reference": "OTHER-LOT", "donor_name": "Acme SA",
                                             "donor_kind": "company"}).json()["id"]  # fmt: skip
    assert (
        station.post(
            f"/api/v1/lots/{other}/devices", json={"asset_number": "OTHER-1", "kind": "phone"}
        ).status_code
        == 201
    )
    assert (
        station.get("/api/v1/lots", params={"reference": REF}).json()["lot"]["id"] == lot_id
    )  # what a station checks
    for i in range(1, N + 1):
        body = {"asset_number": f"PC-{i:02d}", "kind": kind_of(i), "manufacturer": "Lenovo",
                "model": "ThinkPad T480" if kind_of(i) == "laptop" else "ThinkCentre M710", "received_at": RECEIVED}  # fmt: skip
        assert station.post(f"/api/v1/lots/{lot_id}/devices", json=body).status_code == 201

    # diagnostics, erasure, destruction, upload with the station's own client
    erase_all(kit, tmp_path, capsys)
    reconcile(kit.home, kit.cert_dir)  # whatever `station erase` and `station destroy` did not queue
    result = drain(kit.home, kit.config(url))
    assert result.complete, result
    sent = status(kit.home)
    # 20 reports, 19 certificates, 1 failure report, 1 destruction record
    assert (sent.sent, sent.pending, sent.rejected) == (2 * N + 1, 0, 0)

    # repair and outcomes
    for i in range(1, N + 1):
        if verdict_of(i) == "repair":
            r = station.post(
                "/api/v1/events", json={"asset_number": f"PC-{i:02d}", "kind": "repaired", "at": DONE}
            )
            assert r.status_code == 201, r.text
        outcome, detail = outcome_of(i)
        r = staff.post("/api/v1/events", json={"asset_number": f"PC-{i:02d}", "kind": "outcome",
                                                "outcome": outcome, "detail": detail, "at": DONE})  # fmt: skip
        assert r.status_code == 201, r.text
    assert staff.post(f"/api/v1/lots/{lot_id}/close").status_code == 200

    view = staff.get(f"/api/v1/lots/{lot_id}").json()
    counts = view["counts"]
    expected_outcomes = Counter(outcome_of(i)[0] for i in range(1, N + 1))
    assert (counts["devices"], counts["diagnosed"], counts["data_cleared"], counts["repaired"]) == (
        N,
        N,
        N,
        4,
    )
    assert counts["outcomes"] == {
        o: expected_outcomes.get(o, 0) for o in ("reused", "sold", "recycled", "destroyed")
    }
    assert counts["verdicts"] == dict(Counter(verdict_of(i) for i in range(1, N + 1)))
    assert counts["devices_missing_proof"] == []
    failed = {d["asset_number"]: d for d in view["devices"]}[f"PC-{N}"]
    assert failed["drives"][0]["proof"]["kind"] == "destruction"
    assert [r["kind"] for r in failed["drives"][0]["records"]] == ["failure_report", "destruction"]
    reused = Counter(kind_of(i) for i in range(1, N + 1) if outcome_of(i)[0] == "reused")
    impact = load_factors().impact(reused).to_json()

    # the donor page: this lot, nothing else, French and English
    link = staff.post(f"/api/v1/lots/{lot_id}/donor-link").json()
    for lang, words in (("fr", "Réemployés"), ("en", "Reused")):
        page = httpx.get(f"{url}{link['url']}", headers={"Accept-Language": lang})
        assert page.status_code == 200 and f'<html lang="{lang}">' in page.text and words in page.text
        assert all(f"PC-{i:02d}" in page.text for i in range(1, N + 1))
        for secret in ("OTHER-1", "OTHER-LOT", "Acme", "dsi@mairie", "Camille", "bench-1"):
            assert secret not in page.text, secret

    # the lot report, signed with the organisation key, verified offline with its records
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "org.pem").write_bytes(org.pem)
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    for lang in ("fr", "en"):
        out = tmp_path / f"report-{lang}"
        args = [
            "lot-report",
            "--db",
            db,
            REF,
            "--org-keys",
            str(org.key_dir),
            "--lang",
            lang,
            "--out",
            str(out),
        ]
        assert hub_main([*args, "--donor-url", f"{url}{link['url']}"]) == 0
        (signed,) = out.glob("*.json")
        assert next(out.glob("*.pdf")).read_bytes().startswith(b"%PDF")
        capsys.readouterr()
        code = certs_main(
            ["verify", "--trust", str(trust), "--certs", str(kit.cert_dir), str(signed), "--json"]
        )
        doc = json.loads(capsys.readouterr().out)
        assert code == 0, json.dumps(doc["lot_reports"])[:2000]
        checked = doc["lot_reports"][0]
        assert checked["ok"] and len(checked["records"]) == N + 1 and all(r["ok"] for r in checked["records"])
        assert checked["counts"]["received"] == N and checked["counts"]["data_cleared"] == N
        assert checked["impact"] == impact and impact["devices"] == expected_outcomes["reused"]

    # network statistics match
    coordinator = token(hub, None, "coordinator")
    st = httpx.get(f"{url}/api/v1/stats", auth=("c", coordinator)).json()
    per_month = {(r["month"], r["workshop"]): r["devices"] for r in st["devices_per_month"]}
    assert per_month[("2026-10", "Atelier Réemploi")] == N and sum(per_month.values()) == N + 1
    assert st["outcomes"] == {**{o: expected_outcomes.get(o, 0) for o in ("reused", "sold", "recycled", "destroyed")},
                              "none": 1}  # fmt: skip
    assert st["nist_levels"] == {"clear": N - 1, "destroy": 1, "none": 1}
    assert st["erasure_failure_rate_by_model"][0]["failures"] == 1
    assert st["erasure_failure_rate_by_model"][0]["attempts"] == N
    assert st["median_days_intake_to_outcome"] == 10.0
    assert st["impact"]["network"]["network"] == {**impact, "table": load_factors().name,
                                                  "citations": load_factors().citations()}  # fmt: skip
    for lang, words in (("fr", "Statistiques du réseau"), ("en", "Network statistics")):
        page = httpx.get(f"{url}/stats?lang={lang}", auth=("c", coordinator))
        assert page.status_code == 200 and words in page.text and "<svg" in page.text
