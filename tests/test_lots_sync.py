"""Checking a lot reference against the hub: warned (never blocked) when unknown or closed, recorded as
pending when the hub cannot be asked, and asked again by the next sync pass.

The hub's lot lookup (``GET /api/v1/lots?reference=REF``, station token; 200 with the lot, ``closed_at``
null while open; 404 ``{"error": "unknown_lot"}``) is served two ways, each on a real loopback socket
(uvicorn, as ``station-hub serve`` runs): a minimal Starlette app answering exactly that (so the tests of
the offline and refusal cases need no database), and the hub itself (the last test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.testing import free_port, serve_in_thread
from station.sync import lots
from station.sync.config import SyncConfig
from station.sync.drain import drain
from station.sync.outbox import Outbox
from station.sync.state import status

TOKEN = "station-token-for-lots"
LOTS = {
    "LOT-2026-03": {"closed_at": None, "donor_name": "Mairie de Villeurbanne"},
    "mairie/2025.12": {"closed_at": "2026-01-31T17:00:00Z", "donor_name": "Mairie"},
}


def lots_app(asked: list[str]) -> Starlette:
    async def lookup(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized", "message": "bad token"}, status_code=401)
        ref = request.query_params.get("reference", "")
        asked.append(ref)
        lot = LOTS.get(ref)
        if lot is None:
            return JSONResponse(
                {"error": "unknown_lot", "message": f"no lot {ref!r} in your organisation"}, status_code=404
            )
        return JSONResponse({"lot": {"id": 1, "reference": ref, **lot}, "counts": {}})

    return Starlette(routes=[Route("/api/v1/lots", lookup, methods=["GET"])])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    token = h / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    return h


@pytest.fixture
def asked() -> list[str]:
    return []


@pytest.fixture
def hub(asked: list[str]) -> Iterator[str]:
    with serve_in_thread(lots_app(asked)) as url:
        yield url


def config(home: Path, url: str, **kw: object) -> SyncConfig:
    return SyncConfig(url=url, token_file=home / "token", **kw)  # type: ignore[arg-type]


def test_an_open_lot_is_fine_and_recorded(home: Path, hub: str, asked: list[str]) -> None:
    check = lots.check_lot("LOT-2026-03", home, config(home, hub))
    assert check is not None and check.state == "open" and not check.warns
    assert check.detail == "Mairie de Villeurbanne" and asked == ["LOT-2026-03"]
    assert [(c.reference, c.state) for c in lots.recorded(home)] == [("LOT-2026-03", "open")]
    assert status(home).lots == []  # nothing to look at


def test_unknown_and_closed_lots_warn_and_are_listed(home: Path, hub: str, asked: list[str]) -> None:
    closed = lots.check_lot("mairie/2025.12", home, config(home, hub))  # a '/' travels as a query parameter
    assert closed is not None and closed.state == "closed" and closed.warns
    assert closed.detail == "2026-01-31T17:00:00Z"
    unknown = lots.check_lot("LOT-2099-01", home, config(home, hub))
    assert unknown is not None and unknown.state == "unknown"
    assert unknown.detail == "HTTP 404 unknown_lot: no lot 'LOT-2099-01' in your organisation"
    assert asked == ["mairie/2025.12", "LOT-2099-01"]
    assert {lot["reference"]: lot["state"] for lot in status(home).lots} == {
        "mairie/2025.12": "closed",
        "LOT-2099-01": "unknown",
    }


def test_no_hub_configured_asks_nobody(home: Path) -> None:
    assert lots.check_lot("LOT-2026-03", home, SyncConfig()) is None
    assert lots.recorded(home) == []


def test_a_bad_token_leaves_the_check_pending(home: Path, hub: str) -> None:
    (home / "token").write_text("not-the-token\n")
    check = lots.check_lot("LOT-2026-03", home, config(home, hub))
    assert check is not None and check.state == "pending" and "401" in check.detail


def test_offline_the_check_is_pending_and_the_next_sync_pass_asks_again(home: Path, asked: list[str]) -> None:
    port = free_port()  # nothing listens there yet: the hub is unreachable
    url = f"http://127.0.0.1:{port}"
    check = lots.check_lot("LOT-2026-03", home, config(home, url))
    assert check is not None and check.state == "pending" and "unreachable" in check.detail
    assert lots.check_lot("LOT-2099-01", home, config(home, url)) is not None
    assert {lot["reference"] for lot in status(home).lots} == {"LOT-2026-03", "LOT-2099-01"}
    # still offline: a sync pass halts before asking; nothing is lost
    assert drain(home, config(home, url)).lots_checked == 0
    with serve_in_thread(lots_app(asked), port=port):
        result = drain(home, config(home, url))
    assert result.lots_checked == 2, result
    assert sorted(asked) == ["LOT-2026-03", "LOT-2099-01"]
    states = {c.reference: c.state for c in lots.recorded(home)}
    assert states == {"LOT-2026-03": "open", "LOT-2099-01": "unknown"}


def test_a_hub_without_lots_keeps_the_check_pending(home: Path) -> None:
    plain = Starlette(routes=[])  # an older hub: a plain 404 for the route, no error code
    with serve_in_thread(plain) as url:
        check = lots.check_lot("LOT-2026-03", home, config(home, url))
    assert check is not None and check.state == "pending"
    assert "does not answer lot lookups" in check.detail


def test_the_outbox_of_an_older_station_gains_the_lot_table(home: Path) -> None:
    import sqlite3

    with Outbox(home) as box:
        box.conn.execute("DROP TABLE lot_checks")
        box.conn.execute("PRAGMA user_version = 3")
    with Outbox(home) as box:  # migrated in place
        box.record_lot("LOT-1", "pending", "offline", 1.0)
        assert box.lot_checks() == [("LOT-1", "pending", "offline", 1.0)]
    conn = sqlite3.connect(home / "outbox" / "outbox.sqlite3")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
    conn.close()


def test_the_station_asks_the_real_hub(tmp_path: Path) -> None:
    """The hub's own lot lookup (hub/api_lots.py), served by uvicorn on loopback over SQLite: an open
    lot (its reference holds a '/'), an unknown one, then the same lot once staff closed it."""
    import json

    import httpx

    from hub.app import create_app
    from hub.service import Hub
    from tests.test_hub_lots import LOT, staff_token
    from tests.test_sync_support import enrolled, make_kit, make_org

    hub = Hub(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    org = make_org(tmp_path)
    hub.add_organisation(org.key.name, org.pem)
    kit = enrolled(hub, org, make_kit(tmp_path, org, "bench-1"))
    staff = {"Authorization": f"Bearer {staff_token(hub, org)}"}
    try:
        with serve_in_thread(create_app(hub)) as url, httpx.Client(base_url=url, headers=staff) as office:
            created = office.post("/api/v1/lots", content=json.dumps(LOT))
            assert created.status_code == 201, created.text
            cfg = kit.config(url)
            check = lots.check_lot(LOT["reference"], kit.home, cfg)
            assert check is not None and (check.state, check.detail) == ("open", LOT["donor_name"])
            unknown = lots.check_lot("LOT-NOPE", kit.home, cfg)
            assert unknown is not None and unknown.state == "unknown", unknown
            assert office.post(f"/api/v1/lots/{created.json()['id']}/close").status_code == 200
            closed = lots.check_lot(LOT["reference"], kit.home, cfg)
            assert closed is not None and closed.state == "closed" and closed.detail.startswith("20"), closed
    finally:
        hub.engine.dispose()
