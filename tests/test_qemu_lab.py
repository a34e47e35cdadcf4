"""The QEMU lab: its protocol and command line (fast), its recordings, and one real boot (slow)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from host.runner import ReplayRunner, fixture_name, read_fixture
from tests.qemu.build import Cpio, missing_host_packages
from tests.qemu.guest import (
    DiskSpec,
    GuestError,
    GuestTimeout,
    boot,
    ctrl_arg,
    disk_arg,
    encode_job,
    make_image,
    parse_output,
    pattern_coverage,
    qemu_argv,
)

MACHINES = Path(__file__).parent / "fixtures" / "machines"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- protocol and command line, no QEMU needed ---------------------------------------------------


def test_parse_output_decodes_commands_devices_and_ignores_noise() -> None:
    report = "\r\n".join(
        [
            "@@T HELLO 6.1.0-56-amd64",
            "@@T DEV SER1 sda -",
            "@@T DEV SER2 nvme0n1 nvme0",
            "@@T BEGIN 0",
            "@@T ARG",
            _b64("smartctl"),
            "@@T ARG",
            _b64("/dev/sda"),
            "@@T OUT",
            _b64("line one\n@@T END 9\n"),  # output that looks like a delimiter stays output
            "@@T ERR",
            "@@T RC 4",
            "@@T TIME 3.50 4.75",
            "@@T END 0",
            "@@T LOG insmod",
            _b64("insmod failed: x.ko\n"),
        ]
    )
    results, devices, kernel, notes, done = parse_output(report)
    assert kernel == "6.1.0-56-amd64"
    assert done is False  # no DONE line: the guest did not finish
    assert devices["SER1"].path == "/dev/sda" and devices["SER1"].controller is None
    assert devices["SER2"].controller == "nvme0"
    assert len(results) == 1
    r = results[0]
    assert r.argv == ("smartctl", "/dev/sda")
    assert (r.returncode, r.stdout, r.stderr, r.duration) == (4, "line one\n@@T END 9\n", "", 1.25)
    assert notes == ["insmod: insmod failed: x.ko"]


def test_parse_output_without_exit_code_is_an_error() -> None:
    with pytest.raises(GuestError):
        parse_output("@@T BEGIN 0\n@@T ARG\n" + _b64("true") + "\n@@T END 0\n@@T DONE\n")


def test_encode_job_is_line_based_and_refuses_shell_strings(tmp_path: Path) -> None:
    disk = DiskSpec("nvme", tmp_path / "n.img", serial="N1")
    job = encode_job([disk], [["nvme", "id-ctrl", ctrl_arg("N1")], ["echo", "a b; c"]], 30, 10)
    assert job.decode().splitlines() == [
        "settle 10",
        "wait N1",
        "cmd 3 30",
        "nvme",
        "id-ctrl",
        "@ctrl:N1@",
        "cmd 2 30",
        "echo",
        "a b; c",
    ]
    with pytest.raises(TypeError):
        encode_job([disk], ["smartctl -a /dev/sda"], 30, 10)  # a str is a Sequence[str] to mypy
    with pytest.raises(ValueError):
        encode_job([disk], [["echo", "two\nlines"]], 30, 10)


def test_disk_spec_validation(tmp_path: Path) -> None:
    img = tmp_path / "d.img"
    with pytest.raises(ValueError):
        DiskSpec("floppy", img, serial="X")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DiskSpec("sata-hdd", img, serial="bad,serial")  # would inject a QEMU option
    with pytest.raises(ValueError):
        DiskSpec("nvme", img, serial="N1", model="Custom")  # QEMU 7.2 cannot set it
    with pytest.raises(ValueError):
        DiskSpec("scsi-virtio", img, serial="S1", model="seventeen chars!!")


def test_qemu_argv_has_one_controller_per_bus_and_the_failing_nvme(tmp_path: Path) -> None:
    from tests.qemu.build import GuestImage

    image = GuestImage(tmp_path / "vmlinuz", tmp_path / "initramfs.cpio", {})
    disks = [
        DiskSpec("sata-hdd", tmp_path / "a.img", serial="A1"),
        DiskSpec("sata-ssd", tmp_path / "b.img", serial="B1", model="SSD X"),
        DiskSpec("nvme-failing", tmp_path / "c.img", serial="C1"),
        DiskSpec("scsi-lsi", tmp_path / "d.img", serial="D1"),
        DiskSpec("usb", tmp_path / "e.img", serial="E1"),
    ]
    argv = qemu_argv(image, disks, job=tmp_path / "j", console=tmp_path / "c", output=tmp_path / "o")
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices.count("ahci,id=ahci0") == 1
    assert "ide-hd,bus=ahci0.0,drive=disk0,serial=A1,rotation_rate=7200" in devices
    assert "ide-hd,bus=ahci0.1,drive=disk1,serial=B1,rotation_rate=1,model=SSD X" in devices
    assert "nvme,id=nvme2,drive=disk2,serial=C1,smart_critical_warning=4" in devices
    assert "lsi53c895a,id=lsi0" in devices and "qemu-xhci,id=xhci0" in devices
    assert argv[argv.index("-accel") + 1] == "tcg"
    with pytest.raises(ValueError):
        qemu_argv(
            image,
            [DiskSpec("usb", tmp_path / "x,y.img", serial="E1")],
            job=tmp_path / "j",
            console=tmp_path / "c",
            output=tmp_path / "o",
        )


def test_cpio_newc_layout() -> None:
    cpio = Cpio()
    cpio.file("etc/tabula/x", b"abc", 0o600)
    cpio.symlink("bin", "usr/bin")
    data = cpio.bytes()
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    assert b"etc\0" in data and b"etc/tabula\0" in data and b"etc/tabula/x\0" in data
    assert data.rstrip(b"\0").endswith(b"TRAILER!!!")


def test_pattern_coverage_tells_pattern_zero_and_other(tmp_path: Path) -> None:
    img = make_image(tmp_path / "p.img", 64 * 1024, b"0123456789abcdef")
    assert pattern_coverage(img, b"0123456789abcdef") == (1.0, 0.0)
    with img.open("r+b") as f:
        f.seek(4096)
        f.write(bytes(8192))  # two blocks zeroed
        f.write(b"\xff" * 4096)  # one block neither
    same, zero = pattern_coverage(img, b"0123456789abcdef")
    assert (same, zero) == (13 / 16, 2 / 16)  # 16 blocks: 2 zero, 1 other, 13 intact


# --- the recordings ------------------------------------------------------------------------------

CASES = sorted(p.name for p in MACHINES.glob("qemu-*") if (p / "machine.json").exists())


def test_recorded_cases_exist() -> None:
    assert {
        "qemu-sata-hdd",
        "qemu-sata-ssd",
        "qemu-nvme",
        "qemu-nvme-failing",
        "qemu-scsi",
        "qemu-usb",
    } <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_recordings_replay_and_match_machine_json(case: str) -> None:
    directory = MACHINES / case
    machine = json.loads((directory / "machine.json").read_text())
    disk = machine["disks"][0]
    for path in directory.rglob("*"):
        if path.is_file() and path.name != "machine.json":
            result = read_fixture(path)
            assert path.name == fixture_name(result.argv), path
            assert path.stat().st_size < 64 * 1024, f"{path} is too big for a fixture"
    runner = ReplayRunner(directory)
    lsblk = json.loads(runner.run(["lsblk", "-J", "-b", "-O"]).stdout)
    [dev] = lsblk["blockdevices"]  # one disk per fake machine
    assert dev["path"] == disk["path"]
    assert dev["serial"] == disk["serial"]
    assert dev["size"] == disk["size_bytes"]
    info = json.loads(runner.run(["smartctl", "--json=c", "-i", disk["path"]]).stdout)
    assert info["smartctl"]["argv"][-1] == disk["path"]
    assert machine["provenance"]["qemu"].startswith("QEMU emulator version")


def _mutations(case: str) -> dict[str, dict[str, object]]:
    machine = json.loads((MACHINES / case / "machine.json").read_text())
    return {" ".join(m["argv"]): m for m in machine["mutating_commands_in_order"]}


def _host_after(case: str) -> dict[str, float]:
    machine = json.loads((MACHINES / case / "machine.json").read_text())
    after: dict[str, float] = machine["image_check"]["host_after"]
    return after


def test_recorded_lies_nvme_format_erases_the_others_do_not() -> None:
    # The findings the purge work relies on, as measured when recording (see README.md).
    nvme = _mutations("qemu-nvme")
    assert nvme["nvme sanitize /dev/nvme0 -a 2"]["returncode"] != 0
    assert nvme["nvme sanitize /dev/nvme0 -a 2"]["disk_after"] == "pattern"
    assert nvme["nvme format /dev/nvme0n1 --ses=1 --force"]["returncode"] == 0
    assert nvme["nvme format /dev/nvme0n1 --ses=1 --force"]["disk_after"] == "zero"
    assert _host_after("qemu-nvme")["zero_fraction"] == 1.0

    hdd = _mutations("qemu-sata-hdd")
    erase = hdd["hdparm --user-master u --security-erase p /dev/sda"]
    assert (erase["returncode"], erase["disk_after"]) == (0, "pattern")  # exit 0, nothing erased
    assert _host_after("qemu-sata-hdd")["pattern_fraction"] == 1.0

    for case in ("qemu-scsi", "qemu-scsi-lsi"):
        fmt = _mutations(case)["sg_format --format /dev/sda"]
        assert (fmt["returncode"], fmt["disk_after"]) == (0, "pattern")  # "Complete", nothing erased
        assert _host_after(case)["pattern_fraction"] == 1.0


# --- one real boot -------------------------------------------------------------------------------


@pytest.mark.qemu
def test_guest_sees_sata_and_nvme_serials(tmp_path: Path) -> None:
    _require_lab()
    disks = [
        DiskSpec("sata-hdd", make_image(tmp_path / "sata.img", 8 << 20), serial="CI-SATA-1"),
        DiskSpec("nvme", make_image(tmp_path / "nvme.img", 8 << 20), serial="CI-NVME-1"),
    ]
    commands = [["smartctl", "--json=c", "-i", disk_arg(d.serial)] for d in disks]
    report = boot(disks, commands, timeout=240)
    assert [r.returncode & 0b11 for r in report.results] == [0, 0]  # bits 0-1: open/identify failed
    seen = {json.loads(r.stdout)["serial_number"]: r.argv[-1] for r in report.results}
    assert seen == {
        "CI-SATA-1": report.devices["CI-SATA-1"].path,
        "CI-NVME-1": report.devices["CI-NVME-1"].path,
    }
    assert seen["CI-SATA-1"].startswith("/dev/sd") and seen["CI-NVME-1"].startswith("/dev/nvme")


def _require_lab() -> None:
    missing = missing_host_packages()
    if missing:
        message = f"the QEMU lab needs these Debian packages: apt-get install -y {' '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.qemu
def test_guest_runs_argv_verbatim_and_kills_hung_commands(tmp_path: Path) -> None:
    _require_lab()
    report = boot(
        [],
        [
            ["sleep", "30"],
            ["no-such-tool"],
            ["echo", "a b; $(c) *"],
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
        ],
        timeout=120,
        command_timeout=2,
    )
    sleep, missing, echo, sh = report.results
    assert sleep.returncode == 137 and sleep.duration < 10  # killed by the guest's timeout
    assert missing.returncode == 127
    assert echo.stdout == "a b; $(c) *\n"  # one argument, never seen by a shell
    assert (sh.returncode, sh.stdout, sh.stderr) == (3, "out\n", "err\n")


@pytest.mark.qemu
def test_guest_timeout_kills_qemu(tmp_path: Path) -> None:
    _require_lab()
    before = _qemu_pids()
    with pytest.raises(GuestTimeout) as info:
        boot([], [["sleep", "60"]], timeout=3)
    assert "did not finish within 3 s" in str(info.value)
    assert _qemu_pids() <= before  # the QEMU this test started is gone


def _qemu_pids() -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue  # the process ended while we looked
            if cmdline.startswith(b"qemu-system-x86_64\0") and b"opt/tabula/job" in cmdline:
                pids.add(int(proc.name))
    return pids
