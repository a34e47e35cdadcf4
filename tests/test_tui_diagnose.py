"""The diagnostics screen (key g): a recorded machine replayed through the command runner.

SMART, dmidecode and lsblk answers come from ``tests/fixtures/machines`` (ReplayRunner), sysfs and
procfs from a recorded laptop; the CPU and RAM tests run for real with small bounds.  The drive read
test is off: the recorded drives are not this machine's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diagnostics.diagnose import Bounds
from host.runner import ReplayRunner
from station.i18n import set_language
from station.sync import status
from station.tui.app import TabulaApp, create_app
from station.tui.context import DiagnoseSetup
from station.tui.diagnose import event_line, verdict_label
from station.tui.screens import DiagnosticsScreen, DrivesScreen
from tests.test_diag_helpers import LAPTOP, MACHINES
from tests.test_tui_flows import until

SMALL = Bounds(
    cpu_seconds=0.2,
    ram_bytes=8 << 20,
    ram_seconds=10,
    read_bytes=1 << 20,
    read_seconds=1,
    battery_seconds=0.05,
    self_test=None,
)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    yield
    set_language("en")


def make_app(home: Path, machine: str, lang: str = "en", bounds: Bounds = SMALL) -> TabulaApp:
    setup = DiagnoseSetup(
        runner=lambda: ReplayRunner(MACHINES / machine),
        sys_root=LAPTOP / "sys",
        proc_root=LAPTOP / "proc",
        bounds=bounds,
        read_test=False,
    )
    return create_app(
        jobs_root=home / "jobs",
        lang=lang,
        drive_source=lambda: [],
        monitor_factory=False,
        settings_path=home / "settings.toml",
        certificates=False,
        health=False,
        rescan_interval=3600,
        environ={},
        home=home,
        diagnose_setup=setup,
    )


def body(screen: DiagnosticsScreen) -> str:
    from textual.widgets import Static

    return str(screen.query_one("#diag-body", Static).render())


async def open_and_finish(pilot: object, app: TabulaApp) -> DiagnosticsScreen:
    await until(pilot, lambda: app.scans > 0)
    await pilot.press("g")  # type: ignore[attr-defined]
    screen = app.screen
    assert isinstance(screen, DiagnosticsScreen)
    await until(pilot, lambda: screen.report is not None or screen.error is not None, timeout=30)
    assert screen.error is None, screen.error
    await pilot.pause(0.1)  # type: ignore[attr-defined]
    return screen


async def test_failing_nvme_is_recycle_and_the_report_is_saved_and_queued(home: Path) -> None:
    app = make_app(home, "qemu-nvme-failing")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_and_finish(pilot, app)
        # Progress came step by step from the worker thread, in order.
        assert screen.steps[:2] == ["Reading the machine's inventory…", "Reading SMART of /dev/nvme0n1…"]
        assert "/dev/nvme0n1: SMART FAILED, recycle" in screen.steps
        assert screen.steps[-3:] == ["CPU test…", "Memory (RAM) test…", "Battery test…"]
        assert screen.thread is not None and screen.thread is not threading.main_thread()
        text = body(screen)
        assert "SMART: FAILED  → recycle" in text
        assert "critical warning 4" in text and "NVMe critical warning raised" in text
        # The machine: inventory summary, battery wear, the verdict and its reasons.
        assert "Verdict for this machine: REPAIR" in text
        assert "drive /dev/nvme0n1 must be recycled" in text
        for expected in ("Manufacturer: QEMU", "Serial: TABULA-LAB-0001", "CPU: Intel(R) Core(TM) i7-8650U"):
            assert expected in text
        assert "BAT0: wear 45 %, 412 cycles" in text
        assert "Drives: /dev/nvme0n1 33.6 MB" in text
        for line in ("CPU", "Memory", "Battery"):
            assert any(row.strip().startswith(line) and "passed" in row for row in text.splitlines()), line
        # Save: JSON under $TABULA_HOME/reports, and into the sync outbox.
        assert status(home).pending == 0
        await pilot.press("s")
        await pilot.pause(0.1)
        saved = screen.saved
        assert saved is not None and saved.parent == home / "reports" and saved.suffix == ".json"
        doc = json.loads(saved.read_text())
        assert doc["drives"][0]["verdict"] == "recycle" and doc["machine"]["verdict"] == "repair"
        assert status(home).pending == 1  # queued for the hub (sent when one is configured)
        await pilot.press("s")  # saving twice makes a second file, never overwrites the first
        await pilot.pause(0.1)
        assert screen.saved != saved and saved.exists() and screen.saved is not None
        assert len(list((home / "reports").glob("*.json"))) == 2
        await pilot.press("escape")
        assert isinstance(app.screen, DrivesScreen)


async def test_in_french_recyclage_and_the_key_is_diagnostic(home: Path) -> None:
    app = make_app(home, "qemu-nvme-failing", lang="fr")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        assert (
            app.screen._bindings.key_to_bindings["g"][0].description == "Bilan"
        )  # "Diagnostic" left no room for "Espace"
        screen = await open_and_finish(pilot, app)
        text = body(screen)
        assert "SMART: ÉCHEC  → recyclage" in text
        assert "Verdict pour cette machine: RÉPARATION" in text
        assert "Santé des disques (SMART)" in text and "Tests rapides" in text
        assert "/dev/nvme0n1 : SMART ÉCHEC, recyclage" in screen.steps


async def test_a_drive_without_smart_is_unknown_never_passed(home: Path) -> None:
    app = make_app(home, "qemu-scsi")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_and_finish(pilot, app)
        text = body(screen)
        drive = text[text.index("Drive health (SMART)") : text.index("Quick tests")]
        assert "SMART: unknown  → unknown" in drive
        assert "passed" not in drive
        assert "grown defects ?" not in drive  # nothing reported: said once below, not per attribute
        assert "Unknown (not checked): smart_health" in drive
        assert "Unknown (not checked): drive /dev/sda" in text  # the machine lists it too


async def test_leaving_the_screen_cancels_the_diagnosis(home: Path) -> None:
    slow = Bounds(
        cpu_seconds=60, ram_bytes=8 << 20, ram_seconds=60, read_bytes=1 << 20, read_seconds=1,
        battery_seconds=30, self_test=None,
    )  # fmt: skip
    app = make_app(home, "qemu-sata-hdd", bounds=slow)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("g")
        screen = app.screen
        assert isinstance(screen, DiagnosticsScreen)
        await until(pilot, lambda: "CPU test…" in screen.steps)  # a 60 s test has started
        await pilot.press("s")  # nothing to save yet
        assert screen.saved is None
        t0 = time.monotonic()
        await pilot.press("escape")  # the UI answers at once: the test runs in its own thread
        assert isinstance(app.screen, DrivesScreen)
        assert screen.cancel.is_set()
        await until(pilot, screen.finished.is_set, timeout=10)  # diagnose() returned: it was cancelled
        assert time.monotonic() - t0 < 10
        assert screen.report is None  # its result went nowhere
    assert not (home / "reports").exists()


def test_event_lines_and_verdict_words() -> None:
    set_language("en")
    assert event_line("step", {"name": "smart", "device": "/dev/sda"}) == "Reading SMART of /dev/sda…"
    assert event_line("progress", {"name": "self-test", "remaining": 50}) is None

    def words() -> list[str]:
        return [verdict_label(v) for v in ("reuse", "repair", "recycle", "unknown")]

    assert words() == ["reuse", "repair", "recycle", "unknown"]
    set_language("fr")
    assert words() == ["réemploi", "réparation", "recyclage", "inconnu"]
