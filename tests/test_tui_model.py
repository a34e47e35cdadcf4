"""The TUI's plain logic: policies per drive type, confirmation words, settings file, job status."""

from __future__ import annotations

import os
import subprocess
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from erase.journal import Journal, boot_id, process_start
from erase.record import Outcome
from host.drives import DriveEntry
from host.errors import BadInput
from host.identity import DriveInfo
from host.protection import Reason, ReasonCode, Verdict
from station.i18n import set_language
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions
from station.tui import model


def drive(
    media: str = "hdd", transport: str = "sata", serial: str | None = "WD-WCC2E1234567", **kw: object
) -> DriveInfo:
    base = DriveInfo(
        path="/dev/sdb",
        size_bytes=500_107_862_016,
        logical_sector_size=512,
        physical_sector_size=4096,
        transport=transport,
        media_type=media,
        rotational=media == "hdd",
        removable=False,
        read_only=False,
        serial=serial,
        model="WDC WD5000AAKX",
        kernel_name="sdb",
        by_path=("/dev/disk/by-path/pci-0000:00:1f.2-ata-3",),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def entry(info: DriveInfo, *reasons: Reason) -> DriveEntry:
    return DriveEntry(info=info, protection=Verdict.from_reasons(reasons))


@pytest.fixture(autouse=True)
def english() -> None:
    set_language("en")


def test_nist_clear_picks_the_pattern_by_drive_type() -> None:
    assert model.options_for("nist-clear", drive("hdd")) == EraseOptions(method="zero", verify="last")
    for media, transport in (("ssd", "sata"), ("nvme", "nvme"), ("usb", "usb"), ("mmc", "mmc")):
        opts = model.options_for("nist-clear", drive(media, transport))
        assert opts.method == "prng" and opts.verify == "last" and opts.verify_mode == "full"
    assert model.options_for("dod-short", drive("ssd")).method == "dod-short"
    # Purge's fallback overwrite is Clear's: the pattern by drive type, verified.
    assert model.options_for("nist-purge", drive("hdd")) == model.options_for("nist-clear", drive("hdd"))
    assert model.options_for("nist-purge", drive("nvme", "nvme")).method == "prng"
    with pytest.raises(BadInput):
        model.options_for("nist-sanitize", drive())
    with pytest.raises(BadInput):
        model.options_for("custom", drive())  # needs a pattern: not offered by the TUI


def test_purge_is_offered_after_clear_which_stays_first() -> None:
    by_key = {p.key: p for p in model.policies()}
    assert by_key["nist-purge"].available
    assert model.policy_keys()[:2] == ["nist-clear", "nist-purge"]
    assert all(p.available for p in model.policies())


def test_plan_steps_level_and_estimate() -> None:
    plan = plan_job(drive("hdd"), model.options_for("nist-clear", drive("hdd")))
    assert model.plan_steps(plan) == [
        "Write pass 1 of 1: 0x00 on every sector",
        "Read back every sector and check it (every sector)",
    ]
    assert model.level_achieved(plan) == "NIST SP 800-88 Clear, once verification passes"
    # 500 GB written then read back at 150 MB/s (erase.rates)
    assert model.estimate_seconds(plan) == pytest.approx(2 * 500_107_862_016 / 150e6)
    set_language("fr")
    assert model.plan_steps(plan)[0] == "Passe 1 sur 1 : écrire 0x00 sur chaque secteur"


def test_confirmation_words() -> None:
    one = [entry(drive(serial="WD-WCC2E1234567"))]
    assert model.confirmation_word(one) == "4567"
    loop = [entry(drive("virtual", "loop", serial=None, path="/dev/loop7", kernel_name="loop7"))]
    assert model.confirmation_word(loop) == "loop7"
    no_serial = [entry(drive(serial=None, path="/dev/sdc", kernel_name="sdc"))]
    assert model.confirmation_word(no_serial) == "sdc"
    bench = one + loop
    assert model.confirmation_word(bench) == "ERASE"
    set_language("fr")
    assert model.confirmation_word(bench) == "EFFACER"
    assert model.confirmation_matches("4567", " 4567 ")
    assert model.confirmation_matches("EFFACER", "effacer")
    assert not model.confirmation_matches("4567", "1234567x")
    assert not model.confirmation_matches("", "")


def test_protection_labels_are_translated() -> None:
    mounted = Reason(
        ReasonCode.MOUNTED, "has a mounted filesystem: /dev/sdb1 is mounted on /mnt", "/dev/sdb1"
    )
    e = entry(drive(), mounted)
    assert model.protection_label(e) == "mounted"
    set_language("fr")
    assert model.protection_label(e) == "monté"
    assert model.protection_explanations(e) == [
        "Une partition de ce disque est montée : démontez-la d'abord."
    ]


def test_labels() -> None:
    assert model.bay_label(drive()) == "ata-3"
    usb = drive(by_path=("/dev/disk/by-path/pci-0000:00:14.0-usb-0:2:1.0-scsi-0:0:0:0",))
    assert model.bay_label(usb) == "usb-0:2:1.0"
    assert model.bay_label(drive(by_path=())) == "-"
    assert model.human_size(500_107_862_016) == "500 GB"
    assert model.human_size(16 << 20) == "16.8 MB"
    assert model.human_duration(62) == "1:02"
    assert model.human_duration(3 * 3600 + 7 * 60) == "3h07"
    assert model.media_label(drive("nvme", "nvme")) == "NVMe"


def test_settings_round_trip_keeps_other_keys_and_stays_readable_by_the_certificate_signer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[certificate]\ncontact = "+33 4 00"\ndestination = "external_reuse"\n[extra]\nx = [1, 2]\n'
    )
    settings, doc = model.load_settings(path)
    assert settings == model.StationSettings()
    new = model.StationSettings(
        technician='Camille "Cam" Martin',
        organisation="Atelier Réemploi",
        location="Lyon",
        language="fr",
        default_policy="dod-short",
    )
    model.save_settings(path, new, doc, ui_language="fr")
    again, doc2 = model.load_settings(path)
    assert again == new
    data = tomllib.loads(path.read_text())
    assert data["certificate"]["contact"] == "+33 4 00"
    assert data["extra"]["x"] == [1, 2]
    assert data["certificate"]["language"] == "fr"
    from certs.settings import CertSettings

    cert = CertSettings.load(path)
    assert cert.technician == 'Camille "Cam" Martin' and cert.destination == "external_reuse"
    assert new.operator() == {
        "technician": 'Camille "Cam" Martin',
        "organisation": "Atelier Réemploi",
        "location": "Lyon",
    }
    # Automatic language: the certificate takes the language the screens speak.
    model.save_settings(path, replace(new, language=""), doc2, ui_language="en")
    assert model.load_settings(path)[0].language == ""
    assert tomllib.loads(path.read_text())["certificate"]["language"] == "en"


def test_bad_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("technician = \n")
    with pytest.raises(BadInput, match="not valid TOML"):
        model.load_settings(path)


def _job(tmp_path: Path, info: DriveInfo) -> tuple[Path, Journal]:
    plan = plan_job(info, EraseOptions(method="dod-short"))
    job_dir = create_job(tmp_path / "jobs", plan, WorkerOptions())
    return job_dir, Journal(job_dir)


def test_status_of_a_running_then_failed_job(tmp_path: Path) -> None:
    info = drive()
    job_dir, journal = _job(tmp_path, info)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        book = model.JobBook()
        job = book.add(job_dir)
        assert job.outcome is Outcome.INTERRUPTED  # planned, never started, nobody runs it
        journal.append("worker-started", pid=sleeper.pid, boot_id=boot_id(), start=process_start(sleeper.pid))
        assert book.poll() == [job]
        assert model.status_text(job) == "starting"
        size = info.size_bytes
        journal.append("pass-started", **{"pass": 1}, start=0)
        journal.append(
            "progress", **{"pass": 1}, phase="write", done=size // 2, total=size, rate=1e8, synced=True
        )
        book.poll()
        # pass 2 of 3 half done; 3 passes + 1 verification = 4 units; 0.5 of one unit done -> 12%
        assert model.status_text(job) == "P2/3 12% 100MB/s 4h51"  # 3.5 units of 500 GB left at 100 MB/s
        assert book.poll() == []  # nothing new
        journal.append("failed", reason="the drive disappeared: EIO", error="DriveGone")
        sleeper.kill()
        sleeper.wait()
        assert book.poll() == [job]
        assert job.outcome is Outcome.FAILED and job.settled
        assert model.status_text(job) == "FAILED"
        assert model.failure_summary(job.state) == "the drive was unplugged or stopped answering"
    finally:
        journal.close()
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


def test_select_jobs_keeps_running_and_recent_ones(tmp_path: Path) -> None:
    old_dir, old = _job(tmp_path, drive(serial="OLD1"))
    old.append("worker-started", pid=1, boot_id="another-boot", start="1")
    old.append("cancelled", reason="stopped")
    old.close()
    killed_dir, killed = _job(tmp_path, drive(serial="KILLED"))
    killed.close()  # planned, no worker: interrupted, no end time
    bad = tmp_path / "jobs" / "broken"
    bad.mkdir()
    (bad / "journal.jsonl").write_text("not json\n")
    dirs = sorted((tmp_path / "jobs").iterdir())
    import time

    wanted, problems = model.select_jobs(dirs)
    assert wanted == [old_dir]  # ended a moment ago
    assert len(problems) == 1 and problems[0].startswith("broken:")
    wanted, _ = model.select_jobs(dirs, now=time.time() + model.RECENT_SECONDS + 60)
    assert wanted == []
    assert killed_dir not in wanted
    assert os.path.exists(killed_dir)


HOSTILE = [
    "line one\nline two",
    'a "quoted" name',
    "C:\\Users\\tech\\token",
    "tab\there, carriage\rreturn",
    "Atelier Réemploi — Lyon ☕ 日本",
    "trailing backslash \\",
    "''' and \"\"\" together",
    "[station]\nlanguage = 'xx'",
    "\x7f\x01 control",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_settings_round_trip_hostile_values(tmp_path: Path, value: str) -> None:
    """Whatever a technician types (or a path holds) reads back exactly, and nothing else changes."""
    path = tmp_path / "settings.toml"
    doc = {"sync": {"token_file": value, "url": "https://hub.example"}, "certificate": {}}
    settings = model.StationSettings(technician=value, organisation=value, location=value)
    model.save_settings(path, settings, doc, ui_language="fr")
    again, doc2 = model.load_settings(path)
    assert (again.technician, again.organisation, again.location) == (value, value, value)
    assert doc2["sync"] == {"token_file": value, "url": "https://hub.example"}
    assert tomllib.loads(path.read_text(encoding="utf-8"))["station"]["language"] == ""


def test_settings_writer_refuses_what_toml_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    with pytest.raises(BadInput):
        model.save_settings(path, model.StationSettings(), {"x": object()}, ui_language="en")
    assert not path.exists()


async def test_settings_screen_saves_and_switches_language(tmp_path: Path) -> None:
    from textual.widgets import Input

    from station.tui.app import create_app
    from station.tui.screens import DrivesScreen, SettingsScreen

    settings_path = tmp_path / "settings.toml"
    app = create_app(
        jobs_root=tmp_path / "jobs",
        drive_source=lambda: [entry(drive())],
        monitor_factory=False,
        settings_path=settings_path,
        health=False,
        cmdline=tmp_path / "none",
        environ={"LANG": "en_US.UTF-8"},
    )
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.scans:
            await pilot.pause(0.05)
        await pilot.press("s")
        assert isinstance(app.screen, SettingsScreen)
        await pilot.press("tab")
        assert isinstance(app.focused, Input) and app.focused.id == "technician"
        await pilot.press(*"Camille", "tab", *"Atelier", "tab", *"Lyon", "tab")
        await pilot.press("enter", "down", "down", "enter")  # language: Automatic -> English -> Français
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DrivesScreen)
        assert app.screen.query_one("#title").render().plain.startswith("Disques : 1")  # type: ignore[attr-defined]
    saved, _doc = model.load_settings(settings_path)
    assert saved == model.StationSettings("Camille", "Atelier", "Lyon", "fr", model.NIST_CLEAR)
    # The next start speaks French from the settings although the locale is English.
    app2 = create_app(
        jobs_root=tmp_path / "jobs",
        drive_source=lambda: [],
        monitor_factory=False,
        settings_path=settings_path,
        health=False,
        cmdline=tmp_path / "none",
        environ={"LANG": "en_US.UTF-8"},
    )
    async with app2.run_test(size=(80, 24)) as pilot:
        while not app2.scans:
            await pilot.pause(0.05)
        assert "Aucun disque trouvé" in str(app2.screen.query_one("#detail").render())  # type: ignore[attr-defined]


async def test_demo_mode_offers_only_loop_devices(tmp_path: Path) -> None:
    from station.tui.app import create_app

    loop = drive("virtual", "loop", serial=None, path="/dev/loop9", kernel_name="loop9", by_path=())
    app = create_app(
        jobs_root=tmp_path / "jobs",
        demo=True,
        lang="en",
        drive_source=lambda: [entry(drive()), entry(loop)],
        monitor_factory=False,
        settings_path=tmp_path / "settings.toml",
        health=False,
    )
    assert app.include_loop
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.scans:
            await pilot.pause(0.05)
        assert [e.path for e in app.entries] == ["/dev/loop9"]
        assert "(demonstration)" in str(app.screen.query_one("#title").render())  # type: ignore[attr-defined]


def test_boot_parameter_policy_is_the_default_until_one_is_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TABULA_POLICY", "dod-short")
    assert model.load_settings(tmp_path / "none.toml")[0].default_policy == "dod-short"
    saved = tmp_path / "settings.toml"
    saved.write_text('[station]\ndefault_policy = "zero"\n')
    assert model.load_settings(saved)[0].default_policy == "zero"
    monkeypatch.setenv("TABULA_POLICY", "not-a-policy")
    assert model.load_settings(tmp_path / "none.toml")[0].default_policy == model.NIST_CLEAR
