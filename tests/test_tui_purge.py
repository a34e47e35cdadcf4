"""NIST Purge in the TUI: plans from recorded machines, and a real loop-device run that falls back to Clear.

The recorded machines (``TABULA_REPLAY_MACHINE``) answer the read-only probe from their fixtures;
their drives (``/dev/nvme0n1``...) do not exist here, so the drive list is injected from the
recorded ``lsblk`` as allowed entries.  No job is started on a recorded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from erase.purge.machine import REPLAY_DISK_ENV, REPLAY_ENV, ReplayMachine
from erase.record import Outcome
from host.drives import DriveEntry, discover
from host.protection import Verdict
from station.tui.app import TabulaApp, create_app
from station.tui.model import NIST_PURGE, TrackedJob, policies
from station.tui.screens import BenchScreen, PolicyScreen, PurgePlanScreen

MiB = 1 << 20
MACHINES = Path(__file__).parent / "fixtures" / "machines"


def recorded(case: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[DriveEntry]]:
    monkeypatch.setenv(REPLAY_ENV, str(MACHINES / case))
    monkeypatch.delenv(REPLAY_DISK_ENV, raising=False)
    drives = ReplayMachine(MACHINES / case).drives()
    return lambda: [DriveEntry(d, Verdict.from_reasons([])) for d in drives]


def make(home: Path, source: Callable[[], list[DriveEntry]], lang: str = "en") -> TabulaApp:
    return create_app(
        jobs_root=home / "jobs",
        include_loop=True,
        lang=lang,
        drive_source=source,
        monitor_factory=False,
        settings_path=home / "settings.toml",
        health=False,
        poll_interval=0.05,
        rescan_interval=0.3,
        cmdline=home / "no-cmdline",
        environ={},
    )


async def until(pilot: object, cond: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``cond`` holds, then until the screen has handled what the app posted meanwhile
    (the app tells screens to redraw with messages: StationChanged, SyncChanged)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


def text_of(app: TabulaApp) -> str:
    from textual.widgets import Label, Static

    return "\n".join(
        str(w.render()) for w in app.screen.query("*") if isinstance(w, Static | Label) and w.display
    )


async def open_purge_plan(app: TabulaApp, pilot: object) -> PurgePlanScreen:
    await until(pilot, lambda: app.scans > 0 and bool(app.entries))
    await pilot.press("e")  # type: ignore[attr-defined]
    assert isinstance(app.screen, PolicyScreen)
    keys = [p.key for p in policies()]
    assert app.screen.query_one("#policies").highlighted == 0  # type: ignore[attr-defined]
    await pilot.press(*["down"] * keys.index(NIST_PURGE), "enter")  # type: ignore[attr-defined]
    screen = app.screen
    assert isinstance(screen, PurgePlanScreen)
    await until(pilot, lambda: screen.ready)
    return screen


async def confirm_and_settle(app: TabulaApp, pilot: object, screen: PurgePlanScreen) -> TrackedJob:
    """Type the confirmation word, follow the bench until its (single) job has settled."""
    await pilot.press(*screen.word, "enter")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, BenchScreen))
    bench = app.screen
    assert isinstance(bench, BenchScreen)
    await until(pilot, lambda: bench.bench.settled(app.book), timeout=60)
    return app.book.jobs[bench.bench.job_dirs[0]]


async def test_nvme_plan_shows_format_and_purge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make(tmp_path, recorded("qemu-nvme", monkeypatch))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        text = text_of(app)
        assert "NVMe Format (SES=1, user data erase)  → NIST Purge" in text
        assert "Result: NIST Purge" in text and "lower than requested" not in text
        assert "overwrite" not in text  # the firmware purges: no overwrite pass
        assert [len(p.passes) for p in screen.plans] == [0]
        assert [s["action"] for s in screen.plans[0].purge_steps] == ["nvme-format-erase"]
        assert not screen.query_one("#psid-row").display  # Purge reached: no PSID needed
        assert not screen.query_one("#unfreeze").display
        assert "Type 0001 to start" in text  # the serial's last 4 characters


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_usb_bridge_falls_back_to_clear_with_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    app = make(tmp_path, recorded("qemu-usb", monkeypatch), lang)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        text = text_of(app)
        assert [len(p.passes) for p in screen.plans] == [1]
        assert screen.plans[0].purge is not None and screen.plans[0].purge["level_expected"] == "clear"
        if lang == "en":
            assert "Result: NIST Clear" in text and "lower than requested on 1 drive(s)" in text
            assert "Purge is not possible on this drive; it will reach NIST Clear only:" in text
            assert "the USB adapter does not pass the drive's commands" in text
            assert "overwrite random data + verify  → NIST Clear" in text
        else:
            assert "Résultat : NIST Clear" in text
            assert "l'adaptateur USB ne transmet pas les commandes du disque" in text
        # Not a TCG Opal/Pyrite drive (QEMU's, and no sedutil-cli here): no PSID revert is planned (issue 16).
        assert not screen.query_one("#psid-row").display


async def test_planning_error_is_shown_with_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine cannot be reached (here: a recording that does not exist): the plan says why."""
    source = recorded("qemu-nvme", monkeypatch)
    monkeypatch.setenv(REPLAY_ENV, str(tmp_path / "no-such-recording"))
    app = make(tmp_path, source)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        assert screen.errors and not screen.plans
        text = text_of(app)
        assert "no recorded machine at" in text and "no-such-recording" in text
        assert "This plan cannot start" in text
        assert screen.query_one("#confirm").disabled


@pytest.mark.root
async def test_loop_device_purge_falls_back_to_clear_and_verifies(
    tmp_path: Path, make_loop: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REPLAY_ENV, raising=False)
    monkeypatch.setenv("TABULA_HOME", str(tmp_path / "home"))
    dev = make_loop(4 * MiB, fill=b"\xa5")
    app = make(tmp_path, lambda: [e for e in discover(include_loop=True) if e.path == dev])
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        text = text_of(app)
        assert "a loop device (a file) has no firmware to erase it" in text
        assert "overwrite 0x00 + verify  → NIST Clear" in text
        job = await confirm_and_settle(app, pilot, screen)
        assert job.outcome is Outcome.VERIFIED
        await until(pilot, lambda: "NIST Clear reached." in text_of(app))
        result = text_of(app)
        assert "Purge was not possible: a loop device (a file) has no firmware to erase it." in result
    with open(dev, "rb") as f:
        assert f.read() == bytes(4 * MiB)


def test_planner_reasons_in_plain_words_both_languages() -> None:
    from station.i18n import set_language
    from station.tui.model import reason_text, step_label

    try:
        set_language("fr")
        assert reason_text("hdparm is not installed (apt-get install hdparm)") == (
            "l'outil hdparm manque (paquet hdparm)"
        )
        assert reason_text(
            "frozen by the BIOS (add --unfreeze-suspend to try a suspend/resume cycle)"
        ).startswith("gelé par le BIOS")
        assert step_label("NVMe Format, Secure Erase Settings 1 (user data erase)") == (
            "NVMe Format (SES=1, effacement des données)"
        )
        set_language("en")
        assert reason_text("a reason the TUI does not know yet") == "a reason the TUI does not know yet"
        assert step_label("NVMe Format, Secure Erase Settings 1 (user data erase)") == (
            "NVMe Format (SES=1, user data erase)"
        )
    finally:
        set_language("en")


PURGE_CASES = Path(__file__).parent / "fixtures" / "purge"
PATTERN = b"TABULA-TUI-PURGE-" + bytes(range(256))


def replayed_with_disk(machine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Replay ``machine`` with a disk image in tmp_path: the spawned worker inherits both variables."""
    (drive,) = ReplayMachine(machine).drives()
    img = tmp_path / "disk.img"
    img.write_bytes((PATTERN * (drive.size_bytes // len(PATTERN) + 1))[: drive.size_bytes])
    monkeypatch.setenv(REPLAY_ENV, str(machine))
    monkeypatch.setenv(REPLAY_DISK_ENV, str(img))
    monkeypatch.setenv("TABULA_HOME", str(tmp_path / "home"))
    return img


async def test_a_firmware_purge_runs_from_the_tui_to_a_purge_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Confirm a plan, and the worker runs the replayed NVMe Format (which zeroed the recorded disk)."""
    img = replayed_with_disk(MACHINES / "qemu-nvme", tmp_path, monkeypatch)
    drives = ReplayMachine(MACHINES / "qemu-nvme", img).drives()
    app = make(tmp_path, lambda: [DriveEntry(d, Verdict.from_reasons([])) for d in drives])
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        job = await confirm_and_settle(app, pilot, screen)
        assert job.outcome is Outcome.VERIFIED, job.state.failure
        (step,) = job.state.steps.values()
        assert step.ok and step.action == "nvme-format-erase"
        await until(pilot, lambda: "NIST Purge reached." in text_of(app))
    assert img.read_bytes() == bytes(img.stat().st_size)


async def test_a_failed_firmware_step_is_explained_in_french(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = replayed_with_disk(PURGE_CASES / "ata-hdd-owner-locked", tmp_path, monkeypatch)
    drives = ReplayMachine(PURGE_CASES / "ata-hdd-owner-locked", img).drives()
    app = make(tmp_path, lambda: [DriveEntry(d, Verdict.from_reasons([])) for d in drives], lang="fr")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_purge_plan(app, pilot)
        assert "retirer le mot de passe ATA laissé par un effacement interrompu" in text_of(app)
        job = await confirm_and_settle(app, pilot, screen)
        assert job.outcome is Outcome.FAILED
        await until(pilot, lambda: "verrouillé par le mot de passe de son propriétaire" in text_of(app))
    assert img.read_bytes().startswith(PATTERN)  # nothing was erased
