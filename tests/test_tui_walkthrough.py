"""A French trainee's walk through the demo, on real loop devices, real workers and a real printer.

The station starts with no technician (it asks), lists only the demonstration's drives (another
program's loop device is attached beside them), erases one drive and prints its certificate and its
label, erases them all (one fails: its backing file lives on a tmpfs too small for it), records the
failing one's destruction, and stops one erasure.  Everything the screens show on the way is collected
and must hold no English (tests/english.py), and Tabula's own erasure is never "another program".
A second test counts the keys from the drive list to a printed label.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from certs.trust import TrustStore
from certs.verify import Verifier
from erase.record import Outcome
from host.drives import discover
from host.runner import SubprocessRunner
from station.demo import loop_attached, plant, small_tmpfs
from station.i18n import set_language
from station.tui.app import TabulaApp, create_app
from station.tui.model import policies
from station.tui.screens import (
    BenchScreen,
    DestroyScreen,
    DetailsScreen,
    DrivesScreen,
    ResultScreen,
    SettingsScreen,
)
from tests.cups import Printer, available, cups_pdf_printer
from tests.english import context, english_left
from tests.test_tui_flows import move_to, screen_text, until

pytestmark = pytest.mark.root

MiB = 1 << 20


@pytest.fixture(scope="module")
def printer() -> Iterator[Printer]:
    why = available()
    if why is not None:
        pytest.skip(why)
    with cups_pdf_printer() as p:
        yield p


@pytest.fixture(autouse=True)
def french_back_to_english() -> Iterator[None]:
    yield
    set_language("en")


class Demo:
    """The demonstration's drives (by backing file), and one loop device that is not the demo's."""

    def __init__(self, root: Path, stack: ExitStack) -> None:
        self.files: dict[str, str] = {}
        self.devices: dict[str, str] = {}
        for name, size in (("laptop", 8 * MiB), ("desktop", 8 * MiB), ("4kn", 48 * MiB)):
            path = root / f"donor-{name}.img"
            plant(path, size, 512)
            self.devices[name] = stack.enter_context(loop_attached(path, 512))
            self.files[str(path)] = ""
        media = stack.enter_context(small_tmpfs(root / "failing-media", 6 * MiB))
        failing = media / "donor-failing.img"
        plant(failing, 16 * MiB, 512, planted=4 * MiB)
        self.devices["failing"] = stack.enter_context(loop_attached(failing, 512))
        self.files[str(failing)] = "failing"
        foreign = root / "someone-elses.img"
        foreign.write_bytes(b"")
        os.truncate(foreign, 8 * MiB)
        self.foreign = stack.enter_context(loop_attached(foreign, 512))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    root = tmp_path / "demo"
    root.mkdir()
    with ExitStack() as stack:
        yield Demo(root, stack)


def app_for(home: Path, demo: Demo, printer: Printer, lang: str) -> TabulaApp:
    return create_app(
        jobs_root=home / "jobs",
        lang=lang,
        demo_drives=demo.files,
        monitor_factory=False,
        settings_path=home / "settings.toml",
        health=False,
        poll_interval=0.05,
        rescan_interval=0.3,
        print_runner=SubprocessRunner(env=printer.env()),
        home=home,
    )


def shown(app: TabulaApp) -> str:
    """What the terminal shows now (every line drawn), and the notifications on it."""
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    notes = [str(n.message) for n in app._notifications]
    return "\n".join(lines + notes)


class Seen:
    """Everything the technician was shown, screen after screen."""

    def __init__(self, app: TabulaApp) -> None:
        self.app = app
        self.texts: list[str] = []

    async def look(self, pilot: object) -> str:
        """Record what the terminal shows; returns the screen's own text, whitespace flattened."""
        await pilot.pause(0.1)  # type: ignore[attr-defined]
        self.texts.append(shown(self.app))
        return flat(screen_text(self.app) + "\n" + shown(self.app))


def flat(text: str) -> str:
    return " ".join(text.split())


def word_of(app: TabulaApp) -> str:
    return str(app.screen.word)


async def test_a_french_trainee_walks_through_the_demo(
    tmp_path: Path, demo: Demo, printer: Printer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABULA_TECHNICIAN")
    monkeypatch.delenv("TABULA_ORG")
    home = tmp_path / "home"
    monkeypatch.setenv("TABULA_HOME", str(home))
    home.mkdir()
    (home / "settings.toml").write_text(f'[station]\nprinter = "{printer.queue}"\n')
    app = app_for(home, demo, printer, "fr")
    seen = Seen(app)
    async with app.run_test(size=(80, 24)) as pilot:
        # First start: who erases here?
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await seen.look(pilot)
        await pilot.press(*"Camille Martin", "enter", *"Atelier Réemploi", "enter")
        await until(pilot, lambda: isinstance(app.screen, DrivesScreen) and len(app.entries) == 4)
        assert app.settings.technician == "Camille Martin"
        # Only the demo's drives: the other program's loop device is not listed, "Tous" does not take it.
        assert demo.foreign not in {e.path for e in app.entries}
        move_to(app, demo.devices["failing"])
        text = await seen.look(pilot)
        assert "⚠ défaut" in text and "va ÉCHOUER" in text, text  # the failing drive is marked
        await erase_one(app, pilot, seen, demo.devices["laptop"], printer)
        await erase_all(app, pilot, seen, demo)
        await destroy_the_failing_one(app, pilot, seen, demo, home)
        await stop_one(app, pilot, seen, demo)
        await pilot.press("q")
        await pilot.pause(0.3)
    everything = "\n".join(seen.texts)
    assert "autre programme" not in everything  # Tabula's own erasure is never "another program"
    left = english_left(everything)
    assert left == [], [context(everything, w) for w in left]


async def erase_one(app: TabulaApp, pilot: object, seen: Seen, dev: str, printer: Printer) -> None:
    move_to(app, dev)
    await pilot.press("e", "enter")  # type: ignore[attr-defined]
    await seen.look(pilot)  # the plan, in plain words
    await pilot.press(*word_of(app), "enter")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, ResultScreen), timeout=60)
    text = await seen.look(pilot)
    assert "Effacé et vérifié : certificat signé" in text and "Camille Martin" in text
    assert "▀" in text or "▄" in text  # the QR code, drawn in the terminal
    await pilot.press("t")  # type: ignore[attr-defined]  # the label
    await until(pilot, lambda: "envoyée à l'imprimante" in shown(app), timeout=30)
    await pilot.press("i")  # type: ignore[attr-defined]  # the certificate
    await seen.look(pilot)
    assert len(printer.printed(2)) >= 2
    await pilot.press("escape", "escape")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, DrivesScreen))


async def erase_all(app: TabulaApp, pilot: object, seen: Seen, demo: Demo) -> None:
    await pilot.press("a")  # type: ignore[attr-defined]
    assert len(app.selected) == 4
    await pilot.press("e", "enter")  # type: ignore[attr-defined]
    await seen.look(pilot)
    await pilot.press(*word_of(app), "enter")  # type: ignore[attr-defined]
    assert isinstance(app.screen, BenchScreen)
    bench = app.benches[-1]
    await until(pilot, lambda: bench.settled(app.book), timeout=120)
    text = await seen.look(pilot)
    assert "Terminé : 3 disque(s) sur 4 effacé(s) et vérifié(s). 1 NON effacé(s)." in text
    assert "Rapport d'échec signé" in text  # the failure report named as such, never a certificate
    failed = [j for j in (app.book.jobs[d] for d in bench.job_dirs) if j.outcome is not Outcome.VERIFIED]
    assert [j.plan.drive.path for j in failed] == [demo.devices["failing"]]


async def destroy_the_failing_one(app: TabulaApp, pilot: object, seen: Seen, demo: Demo, home: Path) -> None:
    screen = app.screen
    assert isinstance(screen, BenchScreen)
    keys = [str(j.plan.drive.path) for j in screen.jobs()]
    table_row = keys.index(demo.devices["failing"])
    for _ in range(table_row):
        await pilot.press("down")  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, ResultScreen))
    text = await seen.look(pilot)
    assert "NON effacé : rapport d'échec signé" in text and "✔" not in text
    assert "L'effacer à nouveau" in text and "NIST Purge" in text and "Détruit : l'enregistrer" in text
    await pilot.press("k")  # type: ignore[attr-defined]
    assert isinstance(app.screen, DestroyScreen)
    await seen.look(pilot)
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await seen.look(pilot)  # the last question
    await pilot.press("o")  # type: ignore[attr-defined]
    await until(
        pilot, lambda: isinstance(app.screen, ResultScreen) and app.screen.result.kind == "destroyed", 30
    )
    text = await seen.look(pilot)
    assert "Disque détruit : procès-verbal de destruction signé" in text
    job_dir = app.screen.job.job_dir  # type: ignore[attr-defined]
    index = json.loads((job_dir / "destruction.json").read_text())
    store = TrustStore()
    store.add_key_dir(home / "keys")
    for path in index["paths"]:
        verdict = Verifier(store).verify_file(Path(path))
        assert verdict.valid and not verdict.ok and verdict.destruction is not None, verdict.problems
    await pilot.press("escape", "escape")  # type: ignore[attr-defined]


async def stop_one(app: TabulaApp, pilot: object, seen: Seen, demo: Demo) -> None:
    await until(pilot, lambda: isinstance(app.screen, DrivesScreen))
    dev = demo.devices["4kn"]
    move_to(app, dev)
    await pilot.press("e")  # type: ignore[attr-defined]
    await pilot.press(*["down"] * [p.key for p in policies()].index("gutmann"), "enter")  # type: ignore[attr-defined]
    await pilot.press(*word_of(app), "enter")  # type: ignore[attr-defined]
    job = app.book.jobs[app.benches[-1].job_dirs[0]]
    await until(pilot, lambda: job.state.worker is not None)
    pid = int(job.state.worker["pid"])  # type: ignore[index]
    hold_while_writing(pid, dev)  # held still while we look (a loop device is faster than a drive)
    try:
        await pilot.press("escape")  # type: ignore[attr-defined]
        entry = lambda: next(e for e in app.entries if e.path == dev)  # noqa: E731
        await until(pilot, lambda: not entry().protection.allowed, timeout=10)
        move_to(app, dev)
        await pilot.press("d")  # type: ignore[attr-defined]
        assert isinstance(app.screen, DetailsScreen)
        text = await seen.look(pilot)
        assert "En cours d'effacement par Tabula" in text and "autre programme" not in text
        await pilot.press("escape")  # type: ignore[attr-defined]
        await pilot.pause(0.5)  # type: ignore[attr-defined]
        assert isinstance(app.screen, DrivesScreen), (app.screen_stack, app.focused)
        await pilot.press("p")  # type: ignore[attr-defined]  # follow the erasures
        await until(pilot, lambda: isinstance(app.screen, BenchScreen))
        await pilot.press("x")  # type: ignore[attr-defined]
        await seen.look(pilot)
        await pilot.press("o")  # type: ignore[attr-defined]
    finally:
        os.kill(pid, signal.SIGCONT)
    await until(pilot, lambda: job.settled, timeout=30)
    assert job.outcome is Outcome.INTERRUPTED
    await until(pilot, lambda: isinstance(app.screen, ResultScreen))
    text = await seen.look(pilot)
    assert "arrêté à la demande" in text
    await pilot.press("escape", "escape")  # type: ignore[attr-defined]
    await seen.look(pilot)


def hold_while_writing(pid: int, dev: str) -> None:
    """Stop the worker (SIGSTOP) at a moment it has the drive open for writing."""
    from host.drives import drive_info_from_record, read_record
    from host.protection import ReasonCode, check

    info = drive_info_from_record(read_record(f"/sys/class/block/{os.path.basename(dev)}"))
    assert info is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        os.kill(pid, signal.SIGSTOP)
        if check(info).has(ReasonCode.TABULA_JOB):
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError("the worker never held its drive")


async def test_erase_to_a_printed_label_in_at_most_ten_keys(
    tmp_path: Path, make_loop: Callable[..., str], printer: Printer
) -> None:
    """From the drive list: e, Enter (NIST Clear), the drive's word, Enter, then t for the label.

    A real drive's word is the last 4 characters of its serial; a loop device's is its name
    (``loop7``, ``loop12``...), so the count is taken for a 4-character word.
    """
    dev = make_loop(8 * MiB)
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.toml").write_text(f'[station]\nlabel_printer = "{printer.queue}"\n')
    app = create_app(
        jobs_root=home / "jobs",
        lang="en",
        include_loop=True,
        drive_source=lambda: [e for e in discover(include_loop=True) if e.path == dev],
        monitor_factory=False,
        settings_path=home / "settings.toml",
        health=False,
        poll_interval=0.05,
        print_runner=SubprocessRunner(env=printer.env()),
        home=home,
    )
    keys: list[str] = []
    before = len(list(printer.out.glob("*.pdf")))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.scans > 0 and len(app.entries) == 1)

        async def press(*k: str) -> None:
            keys.extend(k)
            await pilot.press(*k)

        await press("e", "enter")
        word = word_of(app)
        await press(*word, "enter")
        await until(pilot, lambda: isinstance(app.screen, ResultScreen), timeout=60)
        await press("t")
        await until(pilot, lambda: "was sent to the printer" in shown(app), timeout=30)
    deadline = time.monotonic() + 60
    while len(list(printer.out.glob("*.pdf"))) <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(list(printer.out.glob("*.pdf"))) == before + 1  # the label came out of the printer
    count = len(keys) - len(word) + 4  # counted for a real drive's 4-character word
    assert count <= 10, keys
