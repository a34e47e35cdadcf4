"""Screens at 80x24 in English and French (pytest-textual-snapshot).

A fixed set of drives (an injected source: the kernel cannot give us an NVMe or a system disk to
show) and journals written as a worker would, so the pictures do not depend on this machine.
Update after an intended change with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and
look at the SVGs.
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from erase.journal import Journal, boot_id, process_start
from host.drives import DriveEntry
from host.identity import DriveInfo
from host.protection import Reason, ReasonCode, Verdict
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions
from station.tui.app import TabulaApp, create_app

SnapCompare = Callable[..., bool]


def info(
    kernel: str, media: str, transport: str, size: int, model: str | None, serial: str | None, port: str
) -> DriveInfo:
    return DriveInfo(
        path=f"/dev/{kernel}",
        size_bytes=size,
        logical_sector_size=512,
        physical_sector_size=512 if media != "hdd" else 4096,
        transport=transport,
        media_type=media,
        rotational=media == "hdd",
        removable=transport == "usb",
        read_only=False,
        serial=serial,
        model=model,
        kernel_name=kernel,
        by_path=(f"/dev/disk/by-path/{port}",) if port else (),
    )


SYSTEM = Reason(ReasonCode.SYSTEM_DISK, "holds the running system: / is mounted from /dev/sda2", "/dev/sda2")

DRIVES = [
    DriveEntry(
        info(
            "sda",
            "ssd",
            "sata",
            240_057_409_536,
            "KINGSTON SA400S37",
            "50026B7782A1B2C3",
            "pci-0000:00:17.0-ata-1",
        ),
        Verdict.from_reasons([SYSTEM]),
    ),
    DriveEntry(
        info(
            "sdb",
            "hdd",
            "sata",
            500_107_862_016,
            "WDC WD5000AAKX",
            "WD-WCC2E1234567",
            "pci-0000:00:17.0-ata-2",
        ),
        Verdict.from_reasons([]),
    ),
    DriveEntry(
        info("sdc", "hdd", "sata", 1_000_204_886_016, "ST1000DM003", "Z1D5K8TX", "pci-0000:00:17.0-ata-3"),
        Verdict.from_reasons([]),
    ),
    DriveEntry(
        info(
            "nvme0n1",
            "nvme",
            "nvme",
            256_060_514_304,
            "Samsung SSD 970",
            "S4EWNX0R123456",
            "pci-0000:03:00.0-nvme-1",
        ),
        Verdict.from_reasons([]),
    ),
    DriveEntry(
        info(
            "sdd",
            "usb",
            "usb",
            16_008_609_792,
            "SanDisk Cruzer",
            "4C530001230517",
            "pci-0000:00:14.0-usb-0:2:1.0",
        ),
        Verdict.from_reasons([]),
    ),
]


@pytest.fixture
def bench_home(tmp_path: Path) -> Iterator[Path]:
    """Two journals: sdc erasing (its 'worker' is a sleeping process), nvme0n1 failed."""
    jobs = tmp_path / "jobs"
    sleeper = subprocess.Popen(["sleep", "120"])
    journals = []
    try:
        running = create_job(jobs, plan_job(DRIVES[2].info, EraseOptions(method="zero")), WorkerOptions())
        j = Journal(running)
        journals.append(j)
        j.append("worker-started", pid=sleeper.pid, boot_id=boot_id(), start=process_start(sleeper.pid))
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append(
            "progress",
            **{"pass": 0},
            phase="write",
            done=400_000_000_000,
            total=1_000_204_886_016,
            rate=1.31e8,
            synced=True,
        )
        failed = create_job(jobs, plan_job(DRIVES[3].info, EraseOptions(method="prng")), WorkerOptions())
        j = Journal(failed)
        journals.append(j)
        j.append("worker-started", pid=1, boot_id=boot_id(), start="0")
        j.append("pass-started", **{"pass": 0}, start=0)
        j.append("failed", reason="the drive disappeared: EIO on write", error="DriveGone")
        yield tmp_path
    finally:
        for j in journals:
            j.close()
        sleeper.kill()
        sleeper.wait()


def make_app(home: Path, lang: str) -> TabulaApp:
    return create_app(
        jobs_root=home / "jobs",
        lang=lang,
        drive_source=lambda: list(DRIVES),
        monitor_factory=False,
        settings_path=home / "settings.toml",
        certificates=False,
        health=lambda i: (
            {"sdb": "good", "sdc": "repair"}.get(i.kernel_name)
            if lang == "en"
            else {"sdb": "bon"}.get(i.kernel_name)
        ),
        poll_interval=3600,
        rescan_interval=3600,
        cmdline=home / "no-cmdline",
        environ={},
    )


def ready(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        while not (app.scans and (app.jobs_loaded or not (app.jobs_root).exists())):
            await pilot.pause(0.05)
        app.refresh_screens()
        await pilot.press(*keys)
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_drive_list(snap_compare: SnapCompare, bench_home: Path, lang: str) -> None:
    assert snap_compare(make_app(bench_home, lang), terminal_size=(80, 24), run_before=ready("down", "space"))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_policy_chooser(snap_compare: SnapCompare, tmp_path: Path, lang: str) -> None:
    keys = ("down", "space", "down", "space", "e")
    assert snap_compare(make_app(tmp_path, lang), terminal_size=(80, 24), run_before=ready(*keys))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_plan_and_confirmation(snap_compare: SnapCompare, tmp_path: Path, lang: str) -> None:
    keys = ("down", "space", "down", "down", "space", "e", "enter")  # sdb (HDD) + nvme0n1 (flash)
    assert snap_compare(make_app(tmp_path, lang), terminal_size=(80, 24), run_before=ready(*keys))


def test_protected_drive_details_in_french(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(make_app(tmp_path, "fr"), terminal_size=(80, 24), run_before=ready("d"))


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_quit_while_erasing_asks(snap_compare: SnapCompare, bench_home: Path, lang: str) -> None:
    assert snap_compare(make_app(bench_home, lang), terminal_size=(80, 24), run_before=ready("q"))
