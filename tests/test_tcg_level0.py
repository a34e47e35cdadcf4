"""TCG Level 0 discovery without sedutil-cli (issue 16 item 4): the parser on hostile buffers, the
tools' hex dumps, and the probe through a replay runner for each transport (the tool missing, the
command refused, a timeout, a real answer), on loop devices (not applicable) and through the
probe recording's read-only guard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from erase.purge.errors import UnrecognisedOutput
from erase.purge.planner import PurgeRefused, plan_purge
from erase.purge.probe import TOOLS, cdb, level0_argvs, probe
from erase.purge.tcg import nvme_hexdump_bytes, parse_level0, sg_raw_hexdump_bytes
from host.errors import CommandTimeout
from host.identity import DriveInfo
from host.runner import CommandResult, ReplayRunner
from station.probekit import read_only
from tests.loopdev import have_root, loop_device

MACHINES = Path(__file__).parent / "fixtures" / "machines"


def _descriptor(code: int, payload: bytes, version: int = 1) -> bytes:
    return code.to_bytes(2, "big") + bytes([version << 4, len(payload)]) + payload


def _discovery(*descriptors: bytes, revision: int = 1, length: int | None = None) -> bytes:
    body = b"".join(descriptors)
    size = 44 + len(body) if length is None else length
    return size.to_bytes(4, "big") + revision.to_bytes(4, "big") + bytes(40) + body


TPER = _descriptor(0x0001, bytes([0x11]) + bytes(11))
LOCKED = _descriptor(0x0002, bytes([0x1F]) + bytes(11))  # supported, enabled, locked, encrypts, MBR
OPAL2 = _descriptor(0x0203, bytes(16))
PYRITE2 = _descriptor(0x0303, bytes(16))


def test_an_opal_2_drive_locked_with_its_shadow_mbr() -> None:
    s = parse_level0(_discovery(TPER, LOCKED, OPAL2) + bytes(400))  # padded, as a 512-byte buffer is
    assert s.families == ("Opal 2",) and s.opal_or_pyrite and s.source == "level0"
    assert (s.locking_supported, s.locking_enabled, s.locked, s.media_encrypt) == (True, True, True, True)
    assert (s.mbr_enabled, s.mbr_done) == (True, False) and s.features == (1, 2, 0x203)
    assert s.describe == "TCG Opal 2, LOCKED" and s.missing_bytes == 0


def test_pyrite_and_unknown_features_and_no_locking_descriptor() -> None:
    s = parse_level0(_discovery(TPER, _descriptor(0xC001, bytes(24)), PYRITE2))
    assert s.families == ("Pyrite 2",) and s.opal_or_pyrite and s.locked is None
    none = parse_level0(_discovery(TPER, _descriptor(0x0402, bytes(12))))
    assert none.families == () and not none.opal_or_pyrite, "a TPer with no SSC: no PSID revert"


def test_a_buffer_cut_inside_the_last_payload_still_names_every_feature() -> None:
    whole = _discovery(TPER, LOCKED, OPAL2)
    s = parse_level0(whole[:-4])
    assert s.families == ("Opal 2",) and s.locked and s.missing_bytes == 4


HOSTILE = {
    "empty": (b"", "empty or all zeros"),
    "zeros": (bytes(512), "empty or all zeros"),
    "zero length": (bytes(3) + b"\x01" + bytes(508), "shorter than its header"),
    "cut in the header": (_discovery(TPER)[:30], "cut inside its header"),
    "revision 2": (_discovery(TPER, revision=2), "revision 2"),
    "length past a descriptor": (_discovery(TPER, length=44 + 6), "past the end the header gives"),
    "huge length": (_discovery(TPER, LOCKED, length=0xFFFFFFF0), "before a feature descriptor"),
    "cut between descriptors": (
        _discovery(TPER, LOCKED, OPAL2)[: 48 + 16 + 2],
        "before a feature descriptor",
    ),
    "cut inside locking": (_discovery(TPER, LOCKED)[: 48 + 16 + 4], "Locking descriptor is cut"),
    "no TPer": (_discovery(LOCKED, OPAL2), "no TPer"),
    "zero features": (_discovery(), "no TPer"),
    "twice": (_discovery(TPER, OPAL2, OPAL2), "appears twice"),
    "garbage": (bytes(range(256)) * 2, "revision"),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_buffers_are_cannot_tell_never_a_guess(name: str) -> None:
    data, why = HOSTILE[name]
    with pytest.raises(UnrecognisedOutput, match=why):
        parse_level0(data)


SG_RAW_INQUIRY = "SCSI Status: Good \n\nReceived 36 bytes of data:\n 00     00 00 05 02 5b 00 00 02  41 54 41 20 20 20 20 20    ....[...ATA     \n 10     51 45 4d 55 20 53 53 44  20 20 20 20 20 20 20 20    QEMU SSD        \n 20     32 2e 35 2b                                         2.5+\n"


def _sg_dump(data: bytes) -> str:
    """sg_raw's stderr layout, as recorded from sg3_utils 1.46 in the QEMU guest (INQUIRY)."""
    lines = ["SCSI Status: Good ", "", f"Received {len(data)} bytes of data:"]
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in row[:8]) + (
            "  " + " ".join(f"{b:02x}" for b in row[8:]) if row[8:] else ""
        )
        lines.append(f" {off:02x}     {hexes:<49}   {''.join(chr(b) if 32 < b < 127 else '.' for b in row)}")
    return "\n".join(lines) + "\n"


def _nvme_dump(data: bytes) -> str:
    rows = ["NVME Security Receive Command Success", "       0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f"]
    for off in range(0, len(data), 16):
        row = data[off : off + 16]
        rows.append(f"{off:04x}:" + "".join(f" {b:02x}" for b in row) + ' "' + "." * len(row) + '"')
    return "\n".join(rows) + "\n"


def test_the_hex_dumps_of_both_tools_give_back_the_bytes() -> None:
    data = _discovery(TPER, LOCKED, OPAL2) + bytes(100)
    assert sg_raw_hexdump_bytes(_sg_dump(data)) == data
    assert nvme_hexdump_bytes(_nvme_dump(data)) == data
    # What sg_raw 0.4.34 (sg3_utils 1.46, Debian 12) printed in the QEMU guest for an INQUIRY of its
    # SATA drive (sg_raw -R -r 36 /dev/sda 12 00 00 00 24 00), 2026-11-29: the layout parsed above.
    inquiry = sg_raw_hexdump_bytes(SG_RAW_INQUIRY)
    assert len(inquiry) == 36 and inquiry[8:16] == b"ATA     " and inquiry[16:24] == b"QEMU SSD"
    with pytest.raises(UnrecognisedOutput, match="received no data"):
        sg_raw_hexdump_bytes("Error 9 occurred, no data received\n")
    with pytest.raises(UnrecognisedOutput, match="printed no hex dump"):
        nvme_hexdump_bytes("NVME Security Receive Command Success\n")
    jumped = _nvme_dump(data).replace("0010:", "0020:", 1)
    with pytest.raises(UnrecognisedOutput, match="jumps"):
        nvme_hexdump_bytes(jumped)


# -- the probe, through a replay runner -------------------------------------------------------------


@dataclass
class _Drive:
    """A fake drive answering the probe's questions; the Level 0 commands answer from ``level0``."""

    base: Path
    level0: dict[str, CommandResult | Exception] = field(default_factory=dict)
    missing: frozenset[str] = frozenset({"sedutil-cli"})
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> bool:
        return tool in TOOLS and tool not in self.missing

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        assert not mutating, argv
        self.asked.append(tuple(argv))
        key = "ata" if "5c" in argv else "spin" if "a2" in argv else "nvme" if "security-recv" in argv else ""
        if key:
            answer = self.level0.get(
                key, CommandResult(tuple(argv), 9, "", "Additional sense: Invalid command operation code\n")
            )
            if isinstance(answer, Exception):
                raise answer
            return CommandResult(tuple(argv), answer.returncode, answer.stdout, answer.stderr)
        return ReplayRunner(self.base, tools=frozenset(TOOLS)).run(argv)


def _sata() -> DriveInfo:
    return DriveInfo(
        "/dev/sda", 32 << 20, 512, 512, "sata", "ssd", False, False, False, serial="TBL-SSD-0001"
    )


def _ok(stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(("x",), 0, stdout, stderr)


def test_a_sata_opal_drive_found_locked_is_refused_with_what_to_do() -> None:
    machine = _Drive(
        MACHINES / "qemu-sata-ssd",
        {"spin": _ok(stderr=_sg_dump(_discovery(TPER, LOCKED, OPAL2) + bytes(400)))},
    )
    caps = probe(_sata(), machine, sysfs=None)
    assert caps.tcg is not None and caps.tcg.locked and caps.tcg.families == ("Opal 2",)
    assert any(n.startswith("TCG (sg_raw SECURITY PROTOCOL IN): TCG Opal 2, LOCKED") for n in caps.notes)
    assert not any("5c" in a for a in machine.asked), "SECURITY PROTOCOL IN answered: no ATA pass-through"
    with pytest.raises(PurgeRefused, match="LOCKED") as exc:
        plan_purge(_sata(), caps, "nist-purge")
    # No sedutil-cli (the live image): the kernel's Opal ioctl (tabula-opal) reverts an Opal 2 drive.
    assert "with --psid" in (exc.value.hint or "") and "sedutil" not in (exc.value.hint or "")
    with_sedutil = replace(caps, tools={**caps.tools, "sedutil-cli": True})
    with pytest.raises(PurgeRefused) as exc:
        plan_purge(_sata(), with_sedutil, "nist-purge")
    assert "with --psid" in (exc.value.hint or "")
    # Without either (a station installed without its own tool): typing the PSID cannot help.
    neither = replace(caps, tools={**caps.tools, "tabula-opal": False})
    with pytest.raises(PurgeRefused) as exc:
        plan_purge(_sata(), neither, "nist-purge")
    assert "tabula-opal is not installed" in (exc.value.hint or "") and "--psid" not in (exc.value.hint or "")


def test_a_usb_bridge_asks_ata_pass_through_first() -> None:
    drive = DriveInfo("/dev/sda", 32 << 20, 512, 512, "usb", "usb", False, True, False)
    machine = _Drive(MACHINES / "qemu-usb", {"ata": _ok(stderr=_sg_dump(_discovery(TPER, PYRITE2)))})
    caps = probe(drive, machine, sysfs=None)
    assert caps.tcg is not None and caps.tcg.families == ("Pyrite 2",)
    assert [a for a in machine.asked if a[0] == "sg_raw"] == [tuple(level0_argvs("usb", "/dev/sda")[0])]


def test_qemu_drives_refuse_it_recorded_answers() -> None:
    """QEMU's SATA drive, replayed from what it answered in the guest: both commands refused."""
    caps = probe(
        _sata(),
        ReplayRunner(MACHINES / "qemu-sata-ssd", tools=frozenset(TOOLS) - {"sedutil-cli"}),
        sysfs=None,
    )
    assert caps.tcg is None and "Invalid field in cdb" in caps.unknown["tcg"]
    assert "Invalid command operation code" in caps.unknown["tcg"]
    plan = plan_purge(_sata(), caps, "nist-purge")
    assert not any(a.action == "opal-psid-revert" for a in plan.alternatives), (
        "unknown: no PSID revert listed"
    )


def test_sg_raw_missing_timeout_and_garbage_are_cannot_tell() -> None:
    missing = _Drive(MACHINES / "qemu-sata-ssd", missing=frozenset({"sedutil-cli", "sg_raw"}))
    caps = probe(_sata(), missing, sysfs=None)
    assert caps.tcg is None and "nor sg_raw (sg3-utils)" in caps.unknown["tcg"]
    assert not any(a[0] == "sg_raw" for a in missing.asked)
    slow = _Drive(MACHINES / "qemu-sata-ssd", {"spin": CommandTimeout(["sg_raw"], 60)})
    caps = probe(_sata(), slow, sysfs=None)
    assert caps.tcg is None and "timed out" in caps.unknown["tcg"]
    assert sum(a[0] == "sg_raw" for a in slow.asked) == 1, "a hung drive is not asked again"
    garbage = _Drive(MACHINES / "qemu-sata-ssd", {"spin": _ok(stderr=_sg_dump(bytes(range(64))))})
    caps = probe(_sata(), garbage, sysfs=None)
    assert caps.tcg is None and "revision" in caps.unknown["tcg"]


def test_nvme_asks_the_controller_only_when_it_has_security_send_receive(tmp_path: Path) -> None:
    nvme = DriveInfo(
        "/dev/nvme0n1", 32 << 20, 512, 512, "nvme", "nvme", False, False, False, serial="TBL-NVME-0001"
    )
    machine = _Drive(MACHINES / "qemu-nvme")
    caps = probe(nvme, machine, sysfs=None)
    assert caps.tcg is not None and caps.tcg.families == () and caps.tcg.source == "nvme-oacs"
    assert not any("security-recv" in a for a in machine.asked)
    # The same controller with OACS bit 0 set: the recorded refusal of QEMU's controller is read.
    base = tmp_path / "nvme"
    base.mkdir()
    for p in (MACHINES / "qemu-nvme").iterdir():
        if p.is_file():
            text = p.read_text().replace('"oacs":266', '"oacs":267')
            (base / p.name).write_text(text)
    caps = probe(nvme, ReplayRunner(base, tools=frozenset(TOOLS) - {"sedutil-cli"}), sysfs=None)
    assert caps.tcg is None and "Invalid Command Opcode" in caps.unknown["tcg"]
    opal = _Drive(
        base,
        {"nvme": _ok(stdout=_nvme_dump(_discovery(TPER, _descriptor(0x0002, b"\x03" + bytes(11)), OPAL2)))},
    )
    caps = probe(nvme, opal, sysfs=None)
    assert caps.tcg is not None and caps.tcg.families == ("Opal 2",) and caps.tcg.locking_enabled
    assert (
        "nvme",
        "security-recv",
        "/dev/nvme0",
        "--secp=1",
        "--spsp=1",
        "--size=2048",
        "--al=2048",
    ) in opal.asked
    plan = plan_purge(nvme, caps, "nist-purge")
    assert any("TCG locking is enabled" in w for w in plan.warnings)
    assert any(a.action == "opal-psid-revert" for a in plan.alternatives)


def test_the_probe_recording_allows_exactly_these_cdbs() -> None:
    for protocol in ("ata", "usb", "scsi", "nvme"):
        for argv in level0_argvs(protocol, "/dev/sdb"):
            assert read_only(argv), argv
    # ATA TRUSTED SEND (5Eh) through ATA PASS-THROUGH, and SECURITY PROTOCOL OUT (B5h): writes.
    trusted_send = cdb("85 0a 06 00 01 00 01 00 00 00 01 00 00 00 5e 00")
    assert not read_only(["sg_raw", "-R", "-r", "512", "/dev/sda", *trusted_send])
    security_out = cdb("b5 01 00 01 00 00 00 00 02 00 00 00")
    assert not read_only(["sg_raw", "-s", "512", "/dev/sda", *security_out])
    assert not read_only(["nvme", "security-send", "/dev/nvme0", "--secp=1", "--spsp=1", "--size=2048"])


@pytest.mark.skipif(not have_root(), reason="needs root and loop devices")
def test_a_loop_device_is_not_applicable_and_nothing_is_sent(tmp_path: Path) -> None:
    from erase.purge.machine import current_machine

    with loop_device(tmp_path, 8 << 20) as dev:
        machine = current_machine()
        drive = machine.resolve(dev, include_loop=True).info
        asked: list[tuple[str, ...]] = []

        class Spy:
            def which(self, tool: str) -> bool:
                return machine.runner.which(tool)

            def run(
                self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False
            ) -> CommandResult:
                asked.append(tuple(argv))
                assert dev in argv or not any(a.startswith("/dev/") for a in argv), argv
                return machine.runner.run(argv, timeout=timeout, mutating=mutating)

        caps = probe(drive, Spy(), sysfs=None)
    assert caps.tcg is None and any("TCG Level 0 discovery: not applicable (loop" in n for n in caps.notes)
    assert not any(a[0] in ("sg_raw", "nvme", "sedutil-cli") for a in asked)


def test_probe_record_then_replay_keeps_the_level0_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``station probe --record`` on QEMU's replayed SATA drive records both Level 0 commands (their
    refusals), redacted, and ``--replay`` plans from them with the same finding."""
    import tarfile

    from station.probekit import record, replay

    monkeypatch.setenv("TABULA_REPLAY_MACHINE", str(MACHINES / "qemu-sata-ssd"))
    out = tmp_path / "probe.tar.gz"
    result = record(out, ["/dev/sda"])
    assert result.refused == ()
    with tarfile.open(out, "r:gz") as tar:
        names = set(tar.getnames())
    assert {"_".join(["sg_raw", "-R", "-r", "2048", "dev_sda", *level0_argvs("ata", "x")[0][5:]])} <= names
    monkeypatch.delenv("TABULA_REPLAY_MACHINE")
    _, (replayed,) = replay(out)
    assert replayed.caps.tcg is None and "Invalid field in cdb" in replayed.caps.unknown["tcg"]
