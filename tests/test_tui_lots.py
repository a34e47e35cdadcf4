"""The machine's lot and asset number in the TUI: scanned (a fast burst of keys ending in Enter) or
typed, refused with a clear message in the technician's language, carried by every job started next
(signed in its certificate), and checked against the hub without ever blocking.

Real loop devices and real workers, as tests/test_tui_flows.py; the hub is a loopback server
(tests/test_lots_sync.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.testing import serve_in_thread
from station.sync import lots
from station.tui.app import TabulaApp
from station.tui.machine import Machine
from station.tui.screens import DrivesScreen, MachineScreen, PlanScreen, ResultScreen
from tests.fixtures.certs.helpers import payload_of
from tests.test_lots_sync import TOKEN, lots_app
from tests.test_tui_flows import app_for, screen_text, until

pytestmark = pytest.mark.root

MiB = 1 << 20


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("TABULA_HOME", str(h))
    return h


def ask_at_start(home: Path) -> None:
    (home / "settings.toml").write_text(
        '[certificate]\ntechnician = "Camille"\n\n[station]\nask_machine = true\n'
    )


def notes(app: TabulaApp) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


async def test_scanned_at_start_refused_when_wrong_then_signed_in_the_certificate(
    home: Path, make_loop: Callable[..., str]
) -> None:
    ask_at_start(home)
    dev = make_loop(4 * MiB)
    app = app_for(home, [dev])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        assert isinstance(app.screen, MachineScreen)  # the machine first, before anything is erased
        await pilot.press(*"LOT 2026", "enter")  # a space: not a lot reference
        assert isinstance(app.screen, MachineScreen)
        text = screen_text(app)
        assert "Lot reference: the lot reference may hold only letters, digits and . _ / - (not ' ')" in text
        # the refused text is selected: the next scan replaces it, then Enter moves on to the asset number
        await pilot.press(*"LOT-2026-03", "enter")
        await pilot.press(*"PC-0173", "enter")
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
        assert app.machine == Machine("LOT-2026-03", "PC-0173")
        assert "lot LOT-2026-03 · asset PC-0173" in screen_text(app)
        await pilot.press("e", "enter")  # the highlighted drive, NIST Clear
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        assert plan.plans[0].operator["lot"] == "LOT-2026-03"
        await pilot.press(*plan.word, "enter")
        await until(pilot, lambda: isinstance(app.screen, ResultScreen), timeout=60)
        await until(pilot, lambda: "PC-0173  lot LOT-2026-03" in screen_text(app))
    (cert,) = (home / "certs").glob("*.json")
    media = payload_of(cert)["media"]
    assert (media["lot"], media["asset_number"]) == ("LOT-2026-03", "PC-0173")


async def test_l_changes_the_machine_in_french_and_escape_keeps_it(
    home: Path, make_loop: Callable[..., str]
) -> None:
    dev = make_loop(4 * MiB)
    app = app_for(home, [dev], lang="fr")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        assert isinstance(app.screen, DrivesScreen)  # not asked at start unless the settings say so
        await pilot.press("l")
        assert isinstance(app.screen, MachineScreen)
        assert "Quelle machine ? Scannez ou tapez son lot et son numéro d'inventaire" in screen_text(app)
        await pilot.press(*"lot#7", "enter")
        assert "Référence du lot : la référence du lot ne peut contenir que" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, DrivesScreen) and app.machine == Machine()
        await pilot.press("l", *"mairie/2026.03", "enter", "enter")  # no asset number: allowed
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
        assert app.machine == Machine("mairie/2026.03", "")
        assert "lot mairie/2026.03" in screen_text(app)
        await pilot.press("l", "backspace", "enter", *"PC-9", "enter")  # the lot removed (selected on focus)
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
        assert app.machine == Machine("", "PC-9")


async def test_an_unknown_lot_is_warned_and_recorded_not_blocked(
    home: Path, make_loop: Callable[..., str]
) -> None:
    token = home / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    dev = make_loop(4 * MiB)
    asked: list[str] = []
    with serve_in_thread(lots_app(asked)) as url:
        (home / "sync.toml").write_text(f'url = "{url}"\ntoken_file = "{token}"\n')
        app = app_for(home, [dev])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.scans > 0)
            await pilot.press("l", *"LOT-2099-01", "enter", *"PC-1", "enter")
            await until(pilot, lambda: "is unknown to the hub" in notes(app))
            assert isinstance(app.screen, DrivesScreen) and app.machine.lot == "LOT-2099-01"
            await pilot.press("l", *"LOT-2026-03", "enter", "enter")  # a scan replaces the selected lot
            await until(pilot, lambda: asked == ["LOT-2099-01", "LOT-2026-03"])
    states = {c.reference: c.state for c in lots.recorded(home)}
    assert states == {"LOT-2099-01": "unknown", "LOT-2026-03": "open"}


async def test_offline_the_lot_check_waits_and_says_nothing_is_lost(
    home: Path, make_loop: Callable[..., str]
) -> None:
    from hub.testing import free_port

    token = home / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    (home / "sync.toml").write_text(f'url = "http://127.0.0.1:{free_port()}"\ntoken_file = "{token}"\n')
    dev = make_loop(4 * MiB)
    app = app_for(home, [dev], lang="fr")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("l", *"LOT-2026-03", "enter", "enter")
        await until(pilot, lambda: "Rien n'est perdu" in notes(app))
    assert [(c.reference, c.state) for c in lots.recorded(home)] == [("LOT-2026-03", "pending")]


async def test_the_diagnostics_report_names_the_machine(home: Path) -> None:
    import json

    from tests.test_tui_diagnose import make_app, open_and_finish

    app = make_app(home, "qemu-nvme")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("l", *"LOT-2026-03", "enter", *"PC-0173", "enter")
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
        screen = await open_and_finish(pilot, app)
        assert "lot LOT-2026-03 · asset PC-0173" in screen_text(app)
        await pilot.press("s")
        await until(pilot, lambda: screen.saved is not None)
        assert screen.saved is not None
        doc = json.loads(screen.saved.read_text())
    assert (doc["schema"], doc["lot"], doc["asset_number"]) == (2, "LOT-2026-03", "PC-0173")
