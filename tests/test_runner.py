"""The one command runner: argv only, replay from recordings, dry-run as a wrapper."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.errors import CommandTimeout, ToolMissing
from host.runner import (
    CommandResult,
    DryRunRunner,
    MissingRecording,
    RecordingRunner,
    ReplayRunner,
    SubprocessRunner,
    fixture_name,
    read_fixture,
    write_fixture,
)


def test_fixture_names_follow_argv() -> None:
    assert fixture_name(["smartctl", "--json=c", "-a", "/dev/sda"]) == "smartctl_--json=c_-a_dev_sda"
    assert fixture_name(["nvme", "id-ctrl", "/dev/nvme0", "-o", "json"]) == "nvme_id-ctrl_dev_nvme0_-o_json"


def test_shell_strings_are_refused() -> None:
    with pytest.raises(TypeError, match="never a shell string"):
        SubprocessRunner().run("ls -l /")  # type: ignore[arg-type]


def test_subprocess_runner_reports_exit_codes_and_output() -> None:
    r = SubprocessRunner().run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.ok


def test_missing_tool_and_timeout_are_typed() -> None:
    with pytest.raises(ToolMissing, match="not installed"):
        SubprocessRunner().run(["no-such-tool-tabula"])
    with pytest.raises(CommandTimeout):
        SubprocessRunner().run(["sleep", "5"], timeout=0.2)


def test_record_then_replay(tmp_path: Path) -> None:
    rec = RecordingRunner(SubprocessRunner(), tmp_path)
    live = rec.run(["sh", "-c", "printf 'a b\\n'; exit 4"])
    replay = ReplayRunner(tmp_path)
    again = replay.run(["sh", "-c", "printf 'a b\\n'; exit 4"])
    assert (again.returncode, again.stdout) == (live.returncode, live.stdout) == (4, "a b\n")
    assert replay.log == [("sh", "-c", "printf 'a b\\n'; exit 4")]


def test_replay_names_the_missing_recording(tmp_path: Path) -> None:
    write_fixture(tmp_path, CommandResult(argv=("smartctl", "-i", "/dev/sda"), returncode=0, stdout="x"))
    with pytest.raises(MissingRecording, match="smartctl -a /dev/sda"):
        ReplayRunner(tmp_path).run(["smartctl", "-a", "/dev/sda"])
    with pytest.raises(ToolMissing):
        ReplayRunner(tmp_path).run(["hdparm", "-I", "/dev/sda"])


def test_dry_run_never_runs_mutating_commands(tmp_path: Path) -> None:
    marker = tmp_path / "touched"
    dry = DryRunRunner(SubprocessRunner())
    r = dry.run(["touch", str(marker)], mutating=True)
    assert not marker.exists() and r.stderr.startswith("dry-run")
    assert dry.would_run == [("touch", str(marker))]
    assert dry.run(["echo", "read-only"]).stdout == "read-only\n"


def test_fixture_round_trip(tmp_path: Path) -> None:
    res = CommandResult(argv=("x", "--json"), returncode=8, stdout='{"a": 1}\nline2\n', stderr="warn")
    assert read_fixture(write_fixture(tmp_path, res)) == CommandResult(
        argv=res.argv, returncode=8, stdout=res.stdout, stderr="warn"
    )
