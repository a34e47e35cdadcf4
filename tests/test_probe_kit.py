"""``station probe``: a recording runs read-only commands only, redacts identifiers, and replays into
the same plans; round trips on loop devices this test creates (and, in tests/test_purge_qemu.py, in
the QEMU guest on its emulated drives)."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from erase.purge.machine import ReplayMachine
from erase.purge.probe import probe
from host.runner import CommandResult, read_fixture
from station.cli import main
from station.probekit import (
    MANIFEST,
    ProbeOnlyRunner,
    ProbeRefused,
    Redactor,
    lsblk_identifiers,
    read_only,
    record,
    replay,
)
from tests.loopdev import have_root, loop_device

HERE = Path(__file__).parent
MACHINES = sorted(
    p
    for base in (HERE / "fixtures" / "machines", HERE / "fixtures" / "purge")
    for p in base.iterdir()
    if (p / "lsblk_-J_-b_-O").exists()
)

MUTATING = [
    ["hdparm", "--user-master", "u", "--security-set-pass", "p", "/dev/sda"],
    ["hdparm", "--user-master", "u", "--security-erase", "p", "/dev/sda"],
    ["hdparm", "-I", "--security-erase", "p", "/dev/sda"],
    ["hdparm", "--yes-i-know-what-i-am-doing", "-N", "p65536", "/dev/sda"],
    ["hdparm", "-N", "p65536", "/dev/sda"],
    ["hdparm", "--yes-i-know-what-i-am-doing", "--dco-restore", "/dev/sda"],
    ["hdparm", "--yes-i-know-what-i-am-doing", "--sanitize-crypto-scramble", "/dev/sda"],
    ["nvme", "format", "/dev/nvme0n1", "--ses=1", "--force"],
    ["nvme", "sanitize", "/dev/nvme0", "-a", "2"],
    ["nvme", "id-ctrl", "/dev/nvme0", "-o", "json", "--vendor-specific"],
    ["sg_sanitize", "--quick", "--overwrite", "--zero", "/dev/sda"],
    ["sg_format", "--format", "/dev/sda"],
    ["mmc", "sanitize", "/dev/mmcblk0"],
    ["blkdiscard", "/dev/mmcblk0"],
    ["sedutil-cli", "--PSIDrevert", "PSID", "/dev/sda"],
    ["smartctl", "-t", "short", "/dev/sda"],
    ["rtcwake", "-m", "mem", "-s", "5"],
    ["dd", "if=/dev/zero", "of=/dev/sda"],
]


@dataclass
class _Spy:
    """A runner that remembers what reached it."""

    calls: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> bool:
        return True

    def run(self, argv: list[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        self.calls.append(tuple(argv))
        return CommandResult(tuple(argv), 0, "")


@pytest.mark.parametrize("argv", MUTATING, ids=[" ".join(a[:3]) for a in MUTATING])
def test_a_probe_refuses_anything_that_can_change_a_drive(argv: list[str]) -> None:
    assert not read_only(argv)
    spy = _Spy()
    with pytest.raises(ProbeRefused, match="refused to run"):
        ProbeOnlyRunner(spy).run(argv)
    assert spy.calls == [], "a refused command never reaches the runner"


def test_a_read_only_command_marked_mutating_is_refused_too() -> None:
    spy = _Spy()
    guard = ProbeOnlyRunner(spy)
    with pytest.raises(ProbeRefused):
        guard.run(["hdparm", "-I", "/dev/sda"], mutating=True)
    assert guard.run(["hdparm", "-I", "/dev/sda"]).ok and spy.calls == [("hdparm", "-I", "/dev/sda")]


@pytest.mark.parametrize("machine_dir", MACHINES, ids=[m.name for m in MACHINES])
def test_every_command_the_probe_runs_is_on_the_read_only_list(machine_dir: Path) -> None:
    """The probe, on every recorded machine, asks only what a probe recording may run."""
    machine = ReplayMachine(machine_dir)
    guard = ProbeOnlyRunner(machine.runner)
    for drive in machine.drives():
        probe(drive, guard, sysfs=None)
    assert guard.refused == []


def test_redaction_is_consistent_same_shape_and_unlinkable() -> None:
    a, b = Redactor(b"k" * 32), Redactor(b"j" * 32)
    for r in (a, b):
        r.add("WD-WCAL96550035")
        r.add_wwn("0x5000c5002f2d395d")
    text = (
        "Serial Number:      WD-WCAL96550035\n"
        "Logical Unit WWN Device Identifier: 5000c5002f2d395d\n"
        "\tUnique ID\t: 02f2d395d\n"
        '{"serial": "WD-WCAL96550035", "wwn": "0x5000c5002f2d395d"}\n'
    )
    out, n = a.apply(text)
    assert n == 5 and "WCAL96550035" not in out and "2f2d395d" not in out
    fake = a.fake("WD-WCAL96550035", False)
    assert out.count(fake) == 2 and len(fake) == 15 and fake[:3].isupper() and fake[2] == "-"
    assert "5000c50" in out, "the NAA and OUI (the manufacturer) stay"
    assert a.apply(text)[0] == out, "the same recording gives the same fakes"
    assert b.apply(text)[0] != out, "another recording gives others"


def _archive_text(path: Path) -> str:
    with tarfile.open(path, "r:gz") as tar:
        return "".join(
            tar.extractfile(m).read().decode()
            for m in tar.getmembers()
            if m.isfile()  # type: ignore[union-attr]
        )


def test_record_then_replay_a_recorded_nvme_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a replayed QEMU machine (no root needed): the serial never leaves, the plan comes back."""
    monkeypatch.setenv("TABULA_REPLAY_MACHINE", str(HERE / "fixtures" / "machines" / "qemu-nvme"))
    out = tmp_path / "probe.tar.gz"
    assert main(["probe", "--record", str(out), "/dev/nvme0n1"]) == 0
    text = _archive_text(out)
    assert "TBL-NVME-0001" not in text and "nvme id-ctrl" not in text  # recorded as files, not logs
    manifest, drives = replay(out)
    assert manifest["redacted"] and manifest["devices"] == ["/dev/nvme0n1"]
    (r,) = drives
    assert (
        r.drive.serial and r.drive.serial != "TBL-NVME-0001" and len(r.drive.serial) == len("TBL-NVME-0001")
    )
    purge = r.plans["nist-purge"]
    assert not isinstance(purge, Exception)
    assert [s.action for s in purge.steps] == ["nvme-format-erase"], "the faked serials still match"
    monkeypatch.delenv("TABULA_REPLAY_MACHINE")
    assert main(["probe", "--replay", str(out)]) == 0


def test_keep_ids_keeps_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TABULA_REPLAY_MACHINE", str(HERE / "fixtures" / "machines" / "qemu-sata-hdd"))
    out = tmp_path / "probe.tar.gz"
    result = record(out, ["/dev/sda"], keep_ids=True)
    assert result.replaced == 0 and "TBL-HDD-0001" in _archive_text(out)


def test_replay_refuses_an_archive_with_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("../escape")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(Exception, match="not a probe recording"):
        replay(bad)


@pytest.mark.skipif(not have_root(), reason="needs root and loop devices")
def test_record_then_replay_on_loop_devices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "loops.tar.gz"
    with (
        loop_device(tmp_path, 8 << 20, name="a.img") as a,
        loop_device(tmp_path, 16 << 20, name="b.img") as b,
    ):
        assert main(["probe", "--record", str(out), "--include-loop", a, b]) == 0
    assert f"recorded 2 drive(s) to {out}" in capsys.readouterr().out
    with tarfile.open(out, "r:gz") as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile(MANIFEST).read())  # type: ignore[union-attr]
    assert {"lsblk_-J_-b_-O", MANIFEST} <= names and manifest["devices"] == [a, b]
    # The loops are gone: the replay plans them from the recording alone.
    assert main(["probe", "--replay", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("nist-purge: reaches Clear") == 2 and "no firmware commands for loop" in text
    manifest, drives = replay(out)
    assert [d.drive.size_bytes for d in drives] == [8 << 20, 16 << 20]
    lsblk = read_fixture_from(out, "lsblk_-J_-b_-O")
    assert lsblk.argv == ("lsblk", "-J", "-b", "-O") and lsblk.returncode == 0


def read_fixture_from(archive: Path, name: str) -> CommandResult:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        path = archive.parent / f"extracted-{name}"
        path.write_bytes(member.read())
    return read_fixture(path)


def test_every_disk_lsblk_lists_is_redacted_not_only_the_recorded_ones() -> None:
    """lsblk lists the whole machine (the boot stick, the station's own disk): all of it is redacted."""
    lsblk = {
        "blockdevices": [
            {
                "name": "sda",
                "serial": "WD-WX71A71D1701",
                "wwn": "0x50014ee6017727fa",
                "children": [{"name": "sda1"}],
            },
            {"name": "sdb", "serial": "STICK-0042-ABCD", "wwn": None},
            {"name": "nvme0n1", "serial": "S5RTNC0T104269", "wwn": "eui.002538b231b0a1b2"},
        ]
    }
    redactor = Redactor(b"x" * 32)
    lsblk_identifiers(json.dumps(lsblk), redactor)
    out, n = redactor.apply(json.dumps(lsblk))
    assert n == 5
    for real in ("WX71A71D1701", "STICK-0042-ABCD", "S5RTNC0T104269", "6017727fa", "231b0a1b2"):
        assert real not in out
    assert json.loads(out)["blockdevices"][0]["children"] == [{"name": "sda1"}]
