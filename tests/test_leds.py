"""Locate LEDs through ledctl: recorded on this machine's loop devices, real run on a loop device."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from host.runner import CommandResult, ReplayRunner, SubprocessRunner, write_fixture
from station.leds import locate

RECORDED = Path(__file__).parent / "fixtures" / "ledctl" / "loop-device"


def test_recorded_unsupported_device_is_reported_plainly() -> None:
    runner = ReplayRunner(RECORDED)
    on, off = locate(runner, "/dev/loop0"), locate(runner, "/dev/loop0", on=False)
    assert (on.ok, on.reason, off.reason) == (False, "unsupported", "unsupported")
    assert runner.log == [
        ("ledctl", "--listed-only", "locate=/dev/loop0"),
        ("ledctl", "--listed-only", "locate_off=/dev/loop0"),
    ]


def test_success_and_failure_are_told_apart(tmp_path: Path) -> None:
    # Constructed (no enclosure with LEDs here): ledctl prints its config notices and exits 0.
    notices = "/etc/ledmon.conf: does not exist, using built-in defaults\n"
    write_fixture(tmp_path, CommandResult(("ledctl", "--listed-only", "locate=/dev/sdb"), 0, notices))
    write_fixture(
        tmp_path, CommandResult(("ledctl", "--listed-only", "locate=/dev/sdc"), 1, "", "ledctl: boom")
    )
    runner = ReplayRunner(tmp_path)
    assert locate(runner, "/dev/sdb").reason == "ok"
    failed = locate(runner, "/dev/sdc")
    assert (failed.ok, failed.reason) == (False, "error") and "boom" in failed.message


def test_missing_ledctl() -> None:
    assert locate(ReplayRunner(RECORDED, tools=frozenset()), "/dev/sdb").reason == "no-tool"


@pytest.mark.root
@pytest.mark.skipif(shutil.which("ledctl") is None, reason="ledmon not installed (./dev setup installs it)")
def test_real_ledctl_on_a_loop_device(make_loop: object) -> None:
    dev = make_loop(1 << 20)  # type: ignore[operator]
    result = locate(SubprocessRunner(), dev)
    assert (result.ok, result.reason) == (False, "unsupported")
