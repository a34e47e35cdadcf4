"""Quick hardware tests, run for real with small bounds (16 MiB of RAM, half a second of CPU)."""

from __future__ import annotations

import hashlib
import mmap
import shutil
import threading
import time
from pathlib import Path

import pytest

from diagnostics.errors import BoundsError
from diagnostics.hwtests import CPU_BLOCK, CPU_BLOCK_SHA256, battery_test, cpu_test, drive_read_test, ram_test
from tests.conftest import LoopFactory
from tests.test_diag_helpers import LAPTOP, LAPTOP_CHARGE


def test_known_answer_is_the_real_sha256() -> None:
    assert hashlib.sha256(CPU_BLOCK).hexdigest() == CPU_BLOCK_SHA256


def test_cpu_passes_on_this_machine_within_its_bound() -> None:
    start = time.monotonic()
    r = cpu_test(seconds=0.5)
    assert time.monotonic() - start < 5
    assert r.status == "pass", r.reason
    assert r.numbers["hashes"] > 0 and r.numbers["errors"] == 0
    assert r.numbers["threads"] >= 1


def test_cpu_detects_wrong_results() -> None:
    calls = {"n": 0}
    lock = threading.Lock()

    def flaky(data: bytes) -> str:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        digest = hashlib.sha256(data).hexdigest()
        return digest if n % 7 else "0" * 64

    r = cpu_test(seconds=0.3, compute=flaky)
    assert r.status == "fail" and r.numbers["errors"] >= 1
    assert r.numbers["error_samples"]


def test_cpu_cancelled_is_unknown_not_pass() -> None:
    cancel = threading.Event()
    cancel.set()
    r = cpu_test(seconds=5, cancel=cancel)
    assert r.status == "unknown" and r.duration < 2


def test_ram_pattern_test_passes_on_16_mib() -> None:
    r = ram_test(16 << 20, seconds=30)
    assert r.status == "pass", r.reason
    assert r.numbers["patterns_done"] == r.numbers["patterns_total"] == 21
    assert r.numbers["bad_bytes"] == 0


@pytest.mark.parametrize("victim", ["walking-one-3", "address", "checker-aa"])
def test_ram_test_finds_a_flipped_bit(victim: str) -> None:
    def tamper(buf: mmap.mmap, name: str) -> None:
        if name == victim:
            buf[12345] ^= 0x10

    r = ram_test(4 << 20, seconds=30, tamper=tamper)
    assert r.status == "fail"
    assert r.numbers["bad_bytes"] == 1
    assert r.numbers["error_samples"][0].startswith(f"{victim}: offset 0x3039")


def test_ram_cancel_and_bounds() -> None:
    cancel = threading.Event()
    cancel.set()
    assert ram_test(1 << 20, cancel=cancel).status == "unknown"
    with pytest.raises(BoundsError):
        ram_test(1 << 50)
    with pytest.raises(BoundsError):
        ram_test(100)


@pytest.mark.root
def test_drive_read_on_a_loop_device_reads_only_within_bounds(make_loop: LoopFactory, tmp_path: Path) -> None:
    dev = make_loop(8 << 20, fill=b"\xab")
    r = drive_read_test(dev, max_bytes=4 << 20, seconds=10)
    assert r.status == "pass", r.reason
    assert r.numbers["bytes_read"] == 4 << 20 and r.numbers["size_bytes"] == 8 << 20
    assert r.numbers["mb_per_second"] > 0
    backing = next(tmp_path.glob("disk*.img"))
    assert backing.read_bytes() == b"\xab" * (8 << 20)  # nothing written


@pytest.mark.root
def test_drive_read_cancelled_before_start_is_unknown(make_loop: LoopFactory) -> None:
    dev = make_loop(1 << 20)
    cancel = threading.Event()
    cancel.set()
    assert drive_read_test(dev, cancel=cancel).status == "unknown"


def test_drive_read_of_a_missing_device_is_unknown() -> None:
    r = drive_read_test("/dev/tabula-does-not-exist")
    assert r.status == "unknown" and "cannot open" in r.reason


def test_battery_consistent_states_pass() -> None:
    r = battery_test(seconds=0.05, sys_root=LAPTOP / "sys")
    assert r.status == "pass", r.reason
    assert r.numbers["per_battery"]["BAT0"]["status"] == "Discharging"
    assert r.numbers["ac_online"] is False
    assert battery_test(seconds=0.05, sys_root=LAPTOP_CHARGE / "sys").status == "pass"


def test_battery_discharging_on_mains_fails(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    shutil.copytree(LAPTOP / "sys", root, symlinks=True)
    (root / "class/power_supply/AC/online").write_text("1\n")
    r = battery_test(seconds=0.05, sys_root=root)
    assert r.status == "fail" and "charger is online" in r.reason


def test_battery_level_moving_against_its_state_fails(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    shutil.copytree(LAPTOP_CHARGE / "sys", root, symlinks=True)
    cap = root / "class/power_supply/BAT1/capacity"

    def drop() -> None:
        time.sleep(0.05)
        cap.write_text("40\n")  # "Charging" while the level falls from 47 to 40

    t = threading.Thread(target=drop)
    t.start()
    r = battery_test(seconds=0.5, sys_root=root)
    t.join()
    assert r.status == "fail" and "Charging but its level fell by 7" in r.reason


def test_no_battery_is_unknown(tmp_path: Path) -> None:
    assert battery_test(seconds=0, sys_root=tmp_path).status == "unknown"
