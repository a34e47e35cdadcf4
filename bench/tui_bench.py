"""TUI benchmark: 24 drives erasing, key-press-to-screen latency and the TUI's own memory.

    python3 bench/tui_bench.py [--drives 24] [--presses 300] [--seconds-per-journal-line 1.0]

Each drive's job has a real journal that a separate "worker" process appends to like a real worker
does (one progress line per drive per second, fsync'd), so the TUI follows 24 live journals through
its normal timer.  The app runs headless (Textual's ``run_test``) at 80x24; a key press is counted
from the moment it is sent until the drive list has moved its cursor *and* the detail line shows the
newly highlighted drive, i.e. until what the technician sees has changed.  Keys are fed through the
driver's queue like a terminal's (not through Pilot.press, which adds its own idle waits).

Prints p50/p95/max latency, the resident memory of the process running the TUI (RSS, which includes
Python and Textual) and how many journal lines were read meanwhile.  No goal is asserted here: the
numbers are for comparing changes (the issue's goal: p95 well under 100 ms on the bench machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from host.drives import DriveEntry
from host.identity import DriveInfo
from host.protection import Verdict
from station.jobs import EraseOptions, create_job, plan_job
from station.options import WorkerOptions

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from erase.journal import Journal, boot_id, process_start
    dirs = [Path(p) for p in sys.argv[2:]]
    interval = float(sys.argv[1])
    journals = [Journal(d) for d in dirs]
    me = os.getpid()
    total = 2_000_398_934_016
    for j in journals:
        j.append("worker-started", pid=me, boot_id=boot_id(), start=process_start(me))
        j.append("pass-started", **{"pass": 0}, start=0)
    done = 0
    while True:
        done += 150_000_000
        for j in journals:
            j.append("progress", **{"pass": 0}, phase="write", done=done, total=total, rate=1.5e8, synced=True)
        time.sleep(interval)
    """
)


def fake_drives(n: int) -> list[DriveEntry]:
    out = []
    for i in range(n):
        name = f"sd{chr(ord('a') + i // 26) if i >= 26 else ''}{chr(ord('a') + i % 26)}"
        info = DriveInfo(
            path=f"/dev/{name}",
            size_bytes=2_000_398_934_016,
            logical_sector_size=512,
            physical_sector_size=4096,
            transport="sas",
            media_type="hdd",
            rotational=True,
            removable=False,
            read_only=False,
            serial=f"ZFL{i:05d}XK",
            model="ST2000NM0033",
            kernel_name=name,
            by_path=(f"/dev/disk/by-path/pci-0000:05:00.0-sas-phy{i}-lun-0",),
        )
        out.append(DriveEntry(info=info, protection=Verdict.from_reasons([])))
    return out


async def measure(home: Path, drives: list[DriveEntry], presses: int) -> tuple[list[float], int, int]:
    from textual import events
    from textual.widgets import DataTable, Static

    from station.tui.app import create_app
    from station.tui.screens import DrivesScreen

    app = create_app(
        jobs_root=home / "jobs",
        lang="en",
        drive_source=lambda: list(drives),
        monitor_factory=False,
        settings_path=home / "settings.toml",
        certificates=False,
        health=False,
        poll_interval=0.5,
        rescan_interval=5.0,
        environ={},
    )
    latencies: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        while not (app.scans and app.jobs_loaded and len(app.book.jobs) == len(drives)):
            await pilot.pause(0.05)
        screen = app.screen
        assert isinstance(screen, DrivesScreen)
        table = screen.query_one("#drives", DataTable)
        detail = screen.query_one("#detail", Static)
        events_before = sum(len(j.state.events) for j in app.book.jobs.values())
        for i in range(presses):
            key = "down" if (i // (len(drives) - 1)) % 2 == 0 else "up"
            before = table.cursor_row
            t0 = time.perf_counter()
            event = events.Key(key, None)
            event.set_sender(app)
            app._driver.send_message(event)  # as the terminal driver does for a real key
            while True:
                row = table.cursor_row
                if row != before and drives[row].info.path in str(detail.render()):
                    break
                await asyncio.sleep(0.0005)
            latencies.append(time.perf_counter() - t0)
            await pilot.pause(0.02)  # a technician does not type at 1000 keys/s
        rss = psutil.Process().memory_info().rss
        events_after = sum(len(j.state.events) for j in app.book.jobs.values())
    return latencies, rss, events_after - events_before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drives", type=int, default=24)
    ap.add_argument("--presses", type=int, default=300)
    ap.add_argument("--seconds-per-journal-line", type=float, default=1.0)
    args = ap.parse_args()
    drives = fake_drives(args.drives)
    with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
        home = Path(tmp)
        job_dirs = [
            create_job(home / "jobs", plan_job(d.info, EraseOptions(method="zero")), WorkerOptions())
            for d in drives
        ]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(args.seconds_per_journal_line), *map(str, job_dirs)], env=env
        )
        try:
            time.sleep(0.5)
            latencies, rss, lines = asyncio.run(measure(home, drives, args.presses))
        finally:
            writer.terminate()
            writer.wait()
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(f"drives erasing (live journals): {args.drives}")
    print(f"key presses: {len(ms)}  journal lines read meanwhile: {lines}")
    print(
        f"key-press-to-screen latency: p50 {statistics.median(ms):.1f} ms  p95 {p95:.1f} ms  max {ms[-1]:.1f} ms"
    )
    print(f"TUI process memory (RSS): {rss / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
