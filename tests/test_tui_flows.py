"""The TUI's flows on real loop devices with real workers (Textual's Pilot drives the keyboard).

Every drive the app sees here is a loop device the test attached itself: the drive source is
``discover(include_loop=True)`` filtered to those devices, so no other block device is ever offered.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from erase.record import Outcome
from host.drives import DriveEntry, discover
from station.jobs import EraseOptions, create_job, plan_job, spawn
from station.options import WorkerOptions
from station.tui.app import TabulaApp, create_app
from station.tui.model import policies
from station.tui.screens import (
    BenchScreen,
    DetailsScreen,
    DrivesScreen,
    PlanScreen,
    PolicyScreen,
    ResultScreen,
)
from tests.loopdev import detach

pytestmark = pytest.mark.root

MiB = 1 << 20


def only(devices: list[str]) -> Callable[[], list[DriveEntry]]:
    """discover(), restricted to the loop devices this test created."""

    def source() -> list[DriveEntry]:
        return [e for e in discover(include_loop=True) if e.path in devices]

    return source


def app_for(home: Path, devices: list[str], **kw: object) -> TabulaApp:
    kw.setdefault("monitor_factory", False)
    kw.setdefault("rescan_interval", 0.3)
    return create_app(
        jobs_root=home / "jobs",
        include_loop=True,
        lang=str(kw.pop("lang", "en")),
        drive_source=only(devices),
        settings_path=home / "settings.toml",
        health=False,
        poll_interval=0.05,
        **kw,  # type: ignore[arg-type]
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


def drives_screen(app: TabulaApp) -> DrivesScreen:
    screen = app.screen_stack[1]
    assert isinstance(screen, DrivesScreen)
    return screen


def screen_text(app: TabulaApp) -> str:
    """What the current screen shows, as plain text (tables, statics, labels)."""
    from textual.widgets import DataTable, Label, Static

    out = []
    for w in app.screen.query("*"):
        if isinstance(w, DataTable):
            for row in range(w.row_count):
                out.append(" ".join(str(c) for c in w.get_row_at(row)))
        elif isinstance(w, Static | Label):
            out.append(str(w.render()))
    return "\n".join(out)


def row_status(app: TabulaApp, dev: str) -> str:
    screen = drives_screen(app)
    for row in screen.rows():
        if row.info.path == dev:
            return str(screen.cells(row)[-1])
    raise AssertionError(f"{dev} is not listed")


def move_to(app: TabulaApp, dev: str) -> None:
    from textual.widgets import DataTable

    screen = drives_screen(app)
    table = screen.query_one("#drives", DataTable)
    for i, key in enumerate(screen._row_keys):
        if screen._rows[key].info.path == dev:
            table.move_cursor(row=i)
            return
    raise AssertionError(f"{dev} is not listed")


async def test_select_plan_confirm_progress_result(home: Path, make_loop: Callable[..., str]) -> None:
    devs = [make_loop(8 * MiB, fill=b"\xa5"), make_loop(8 * MiB, fill=b"\x5a")]
    app = app_for(home, devs)
    bells: list[bool] = []  # per bell: had every job of the newest bench settled?
    real_bell = app.bell

    def bell() -> None:
        bells.append(all(app.book.jobs[d].settled for d in app.benches[-1].job_dirs))
        real_bell()

    app.bell = bell  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        for d in devs:
            move_to(app, d)
            await pilot.press("space")
        assert len(app.selected) == 2
        await pilot.press("e")
        assert isinstance(app.screen, PolicyScreen)
        await pilot.press("enter")  # NIST Clear, the default
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        assert [p.method for p in plan.plans] == ["zero", "zero"]  # loop devices are not flash
        assert plan.word == "ERASE"
        text = screen_text(app)
        assert "NIST SP 800-88 Clear" in text and "Read back every sector" in text
        # A wrong word erases nothing.
        await pilot.press(*"ERASR", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PlanScreen)
        assert not (home / "jobs").exists() or not list((home / "jobs").iterdir())
        await pilot.press(*"erase", "enter")
        assert isinstance(app.screen, BenchScreen)
        bench = app.benches[-1]
        await until(pilot, lambda: bench.rang)
        jobs = [app.book.jobs[d] for d in bench.job_dirs]
        assert [j.outcome for j in jobs] == [Outcome.VERIFIED, Outcome.VERIFIED]
        await until(pilot, lambda: "Finished: 2 of 2 drive(s) erased and verified." in screen_text(app))
        assert bells == [True]  # one bell for the whole bench, once both drives had settled
        text = screen_text(app)
        for j in jobs:
            assert j.certificates and all(Path(p).exists() for p in j.certificates)
            assert "Certificate: " + j.certificates[-1] in text.replace("\n", "")
        await pilot.press("escape")
        assert isinstance(app.screen, DrivesScreen)
        await until(pilot, lambda: all(row_status(app, d) in ("verified", "signed") for d in devs))
        # the certificate viewer checks the signature like `station verify`
        move_to(app, devs[0])
        await pilot.press("d")
        assert isinstance(app.screen, DetailsScreen)
        assert "Signature valid, signed by this station." in screen_text(app)
        await pilot.press("escape")
        signed = next(p for p in jobs[0].certificates if p.endswith(".json"))
        doc = json.loads(Path(signed).read_text())
        doc["payload"] = doc["payload"][:-4] + ("AAAA" if doc["payload"][-4:] != "AAAA" else "BBBB")
        Path(signed).write_text(json.dumps(doc))
        await pilot.press("d")
        assert "Signature NOT valid" in screen_text(app)
    for d in devs:  # the drives really were overwritten
        with open(d, "rb") as f:
            assert f.read(MiB) == bytes(MiB)
            f.seek(-4096, os.SEEK_END)
            assert f.read() == bytes(4096)


async def test_single_loop_is_confirmed_by_its_device_name_in_french(
    home: Path, make_loop: Callable[..., str]
) -> None:
    dev = make_loop(8 * MiB)
    app = app_for(home, [dev], lang="fr")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("e")  # no selection: the highlighted drive
        zero = [p.key for p in policies()].index("zero")
        await pilot.press(*["down"] * zero, "enter")  # "zero" method
        plan = app.screen
        assert isinstance(plan, PlanScreen)
        assert plan.word == os.path.basename(dev)
        assert "Toutes les données seront perdues. Tapez " + plan.word in screen_text(app)
        await pilot.press(*"EFFACER", "enter")  # the bench word is not this drive's name
        await pilot.pause(0.2)
        assert isinstance(app.screen, PlanScreen)
        await pilot.press(*plan.word, "enter")
        bench = app.benches[-1]
        await until(pilot, lambda: bench.settled(app.book))
        # One drive: its result comes up by itself, with its certificate and what to do next.
        await until(pilot, lambda: isinstance(app.screen, ResultScreen))
        text = screen_text(app)
        assert "Effacé et vérifié : certificat signé" in text and "Imprimer une étiquette" in text
        await pilot.press("escape")
        assert "Terminé : 1 disque(s) sur 1 effacé(s) et vérifié(s)." in screen_text(app)


async def test_protected_drive_is_listed_locked_and_refused(
    home: Path, make_loop: Callable[..., str]
) -> None:
    dev = make_loop(8 * MiB)
    free = make_loop(8 * MiB)
    with open(dev, "rb") as held:
        holder = subprocess.Popen(["sleep", "60"], stdin=held)  # another program holds it open
    try:
        app = app_for(home, [dev, free])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.scans > 0 and len(app.entries) == 2)
            assert "in use" in row_status(app, dev)
            move_to(app, dev)
            await pilot.press("space")
            assert app.selected == set()
            await pilot.press("e")
            assert isinstance(app.screen, DrivesScreen)  # no policy screen for a protected drive
            await pilot.press("a")  # "all" skips it
            assert app.selected == {e.identity for e in app.entries if e.path == free}
            await pilot.press("d")
            assert isinstance(app.screen, DetailsScreen)
            text = screen_text(app)
            assert "Another program has this drive open" in text and "sleep" in text
    finally:
        holder.kill()
        holder.wait()


async def test_hotplug_add_and_remove_with_kernel_events(
    home: Path, tmp_path: Path, make_loop: Callable[..., str]
) -> None:
    from tests.loopdev import attach

    first = make_loop(8 * MiB)
    mine = [first]
    img = tmp_path / "late.img"
    img.write_bytes(b"")
    os.truncate(img, 8 * MiB)
    # Real pyudev monitor (kernel events: no udevd here); a long periodic rescan so only events count.
    app = app_for(home, mine, monitor_factory=True, rescan_interval=3600)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and app.monitor is not None)
        late = attach(img)
        mine.append(late)
        try:
            # Within 5 s while the periodic rescan is an hour away: the kernel event did it.
            await until(pilot, lambda: any(e.path == late for e in app.entries), timeout=5)
            detach(late)
            await until(pilot, lambda: not any(e.path == late for e in app.entries), timeout=5)
            assert [e.path for e in app.entries] == [first]
        finally:
            detach(late)


def _fake_entry(path: str, serial: str) -> DriveEntry:
    from host.identity import DriveInfo
    from host.protection import Verdict

    info = DriveInfo(
        path=path,
        size_bytes=500_107_862_016,
        logical_sector_size=512,
        physical_sector_size=4096,
        transport="sata",
        media_type="hdd",
        rotational=True,
        removable=False,
        read_only=False,
        serial=serial,
        model="WDC WD5000AAKX",
        kernel_name=os.path.basename(path),
        by_path=("/dev/disk/by-path/pci-0000:00:1f.2-ata-3",),
    )
    return DriveEntry(info=info, protection=Verdict.from_reasons([]))


async def test_drive_pulled_during_erase_shows_the_failed_journal(home: Path) -> None:
    """The kernel cannot pull a loop device from under a writer: a journal written as the worker would."""
    from erase.journal import Journal, boot_id, process_start

    entry = _fake_entry("/dev/sdz", "WD-WCC2E7654321")
    present = [entry]
    callbacks: list[Callable[[str, object], None]] = []

    class FakeMonitor:
        def stop(self) -> None:
            pass

    def factory(cb: Callable[[str, object], None]) -> FakeMonitor:
        callbacks.append(cb)
        return FakeMonitor()

    plan = plan_job(entry.info, EraseOptions(method="zero"))
    job_dir = create_job(home / "jobs", plan, WorkerOptions())
    journal = Journal(job_dir)
    sleeper = subprocess.Popen(["sleep", "60"])  # stands for the live worker
    try:
        journal.append("worker-started", pid=sleeper.pid, boot_id=boot_id(), start=process_start(sleeper.pid))
        journal.append("pass-started", **{"pass": 0}, start=0)
        journal.append(
            "progress",
            **{"pass": 0},
            phase="write",
            done=50_000_000_000,
            total=500_107_862_016,
            rate=1.2e8,
            synced=True,
        )
        app = create_app(
            jobs_root=home / "jobs",
            lang="en",
            drive_source=lambda: list(present),
            monitor_factory=factory,
            settings_path=home / "settings.toml",
            health=False,
            poll_interval=0.05,
            rescan_interval=3600,
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.scans > 0 and app.jobs_loaded > 0)
            # write + verify: 10% of the first half
            assert row_status(app, "/dev/sdz") == "pass 1/1 4% 120MB/s 2h11"
            # Pulled: the kernel says remove, the worker journals the failure and exits.
            present.clear()
            callbacks[0]("remove", "sdz")
            journal.append("failed", reason="the drive disappeared: EIO on write", error="DriveGone")
            sleeper.kill()
            sleeper.wait()
            await until(pilot, lambda: not app.entries and app.book.jobs[job_dir].outcome is Outcome.FAILED)
            await until(pilot, lambda: row_status(app, "/dev/sdz") == "removed: FAILED")
            text = screen_text(app)
            assert (
                "This drive was removed." in text and "the drive was unplugged or stopped answering" in text
            )
    finally:
        journal.close()
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


async def test_quit_and_restart_mid_erase_reattaches(home: Path, make_loop: Callable[..., str]) -> None:
    dev = make_loop(32 * MiB)
    app = app_for(home, [dev])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        await pilot.press("e")
        ol_keys = [p.key for p in policies()]
        await pilot.press(*["down"] * ol_keys.index("gutmann"), "enter")  # 35 passes: long enough
        await pilot.press(*os.path.basename(dev), "enter")
        job_dir = app.benches[-1].job_dirs[0]
        await until(pilot, lambda: app.book.jobs[job_dir].state.phase == "write")
    # The TUI is gone; the worker is not.
    app2 = app_for(home, [dev])
    async with app2.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app2.scans > 0 and job_dir in app2.book.jobs)
        job = app2.book.jobs[job_dir]
        assert job.outcome is Outcome.RUNNING and not job.ours
        await pilot.pause(0.3)
        await until(pilot, lambda: job.state.rate > 0)
        await pilot.pause(0.1)
        status = row_status(app2, dev)
        if job.outcome is Outcome.RUNNING:  # "pass 7/35 18% 0:04" (or "check ..." at the very end)
            assert status.startswith(("pass ", "check")) and "%" in status, status
        first = job.state.overall_fraction
        await until(pilot, lambda: job.state.overall_fraction > first or job.settled)
        await until(pilot, lambda: job.settled, timeout=120)
        assert job.outcome is Outcome.VERIFIED
        # the worker let go of the drive: the rescan that follows shows it unlocked, with its result
        await until(pilot, lambda: row_status(app2, dev) in ("verified", "signed"))
    # A third start shows the finished outcome.
    app3 = app_for(home, [dev])
    async with app3.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app3.scans > 0 and app3.jobs_loaded > 0)
        await until(pilot, lambda: row_status(app3, dev) in ("verified", "signed"))


async def test_worker_started_outside_the_tui_is_picked_up(home: Path, make_loop: Callable[..., str]) -> None:
    """A job started by `station erase` while the TUI runs appears on the next rescan."""
    dev = make_loop(8 * MiB)
    app = app_for(home, [dev])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0)
        entry = app.entries[0]
        plan = plan_job(entry.info, EraseOptions(method="one"))
        job_dir = create_job(home / "jobs", plan, WorkerOptions(include_loop=True))
        proc = spawn(job_dir)
        await until(pilot, lambda: job_dir in app.book.jobs and app.book.jobs[job_dir].settled)
        assert app.book.jobs[job_dir].outcome is Outcome.VERIFIED
        await asyncio.to_thread(proc.wait)
    record = json.loads((job_dir / "record.json").read_text())
    assert record["outcome"] == "verified"


@pytest.mark.parametrize("lang, expected", [("en", "has no LED"), ("fr", "pas de voyant")])
async def test_locate_led_from_the_details_screen(
    home: Path, make_loop: Callable[..., str], lang: str, expected: str
) -> None:
    """`l` runs ledctl through the runner; a loop device's bay has no LED, and the technician is told so."""
    import shutil

    if shutil.which("ledctl") is None:
        pytest.skip("ledmon not installed (./dev setup installs it)")
    dev = make_loop(8 * MiB)
    app = app_for(home, [dev], lang=lang)
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and len(app.entries) == 1)
        await pilot.press("d")
        assert isinstance(app.screen, DetailsScreen)
        original = app.screen.notify

        def record(message: str, **kw: object) -> None:
            notes.append(message)
            original(message, **kw)  # type: ignore[arg-type]

        app.screen.notify = record  # type: ignore[method-assign]
        await pilot.press("l")
        await until(pilot, lambda: bool(notes), timeout=20)
    assert expected in notes[0]
