"""Capability parsers on the recorded QEMU outputs (tests/fixtures/machines) and on the constructed
fixtures (tests/fixtures/purge, provenance in its README), and the planner's decisions."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from erase.purge.errors import UnrecognisedOutput
from erase.purge.machine import ReplayMachine
from erase.purge.planner import PlanOptions, PurgeRefused, plan_purge
from erase.purge.probe import (
    Capabilities,
    aborted_command,
    nvme_controller_of,
    nvme_list_namespaces,
    nvme_sysfs_controller,
    nvme_sysfs_namespaces,
    parse_dco_identify,
    parse_hdparm_identify,
    parse_hdparm_n,
    parse_hdparm_sanitize_status,
    parse_nvme_id_ctrl,
    parse_nvme_id_ns,
    parse_nvme_sanitize_log,
    parse_sg_opcodes,
    probe,
)
from erase.purge.tcg import TcgStatus
from host.identity import DriveInfo
from host.lsblk import parse_lsblk
from host.runner import CommandResult, ReplayRunner, read_fixture, write_fixture

HERE = Path(__file__).parent
MACHINES = HERE / "fixtures" / "machines"
PURGE = HERE / "fixtures" / "purge"


def out(path: Path) -> str:
    return read_fixture(path).stdout


def test_hdparm_identify_of_recorded_sata_disks() -> None:
    hdd = parse_hdparm_identify(out(MACHINES / "qemu-sata-hdd" / "hdparm_-I_dev_sda"))
    assert hdd.valid and hdd.model == "QEMU HARDDISK" and hdd.serial == "TBL-HDD-0001"
    assert hdd.sectors == 65536 and hdd.logical_sector == 512
    assert hdd.rotation_rate == 7200 and hdd.solid_state is False
    assert not hdd.security.supported and not hdd.sanitize
    ssd = parse_hdparm_identify(out(MACHINES / "qemu-sata-ssd" / "hdparm_-I_dev_sda"))
    assert ssd.solid_state is True and ssd.rotation_rate is None


def test_usb_bridge_all_zero_identify_is_invalid() -> None:
    usb = parse_hdparm_identify(out(MACHINES / "qemu-usb" / "hdparm_-I_dev_sda"))
    assert not usb.valid and usb.model is None and usb.sectors is None


def test_constructed_security_and_sanitize_sections() -> None:
    frozen = parse_hdparm_identify(out(PURGE / "ata-hdd-frozen" / "hdparm_-I_dev_sda")).security
    assert frozen.supported and frozen.frozen and not frozen.enabled and not frozen.locked
    assert frozen.enhanced_supported and frozen.erase_minutes == 2 and frozen.enhanced_minutes == 2
    enabled = parse_hdparm_identify(
        out(PURGE / "ata-hdd-erase-lies" / "after-security-set-pass" / "hdparm_-I_dev_sda")
    ).security
    assert enabled.enabled and not enabled.frozen
    ssd = parse_hdparm_identify(out(PURGE / "ata-ssd-sanitize" / "hdparm_-I_dev_sda"))
    assert ssd.sanitize and ssd.sanitize_crypto and ssd.sanitize_block and ssd.sanitize_overwrite


def test_hpa_dco_and_sanitize_status() -> None:
    hpa = parse_hdparm_n(out(MACHINES / "qemu-sata-hdd" / "hdparm_-N_dev_sda"))
    assert hpa is not None and (hpa.current, hpa.native, hpa.enabled) == (65536, 65536, False)
    hidden = parse_hdparm_n(out(PURGE / "ata-hdd-hpa-lies" / "hdparm_-N_dev_sda"))
    assert hidden is not None and hidden.hidden_sectors == 4096 and hidden.enabled
    # QEMU has no DCO: it answers "Real max sectors: 1", which is not a size.
    assert parse_dco_identify(out(MACHINES / "qemu-sata-hdd" / "hdparm_--dco-identify_dev_sda")) is None
    assert parse_dco_identify("Real max sectors: 976773168\n") == 976773168
    # The recorded sanitize-status of a drive without SANITIZE prints no state at all.
    assert (
        parse_hdparm_sanitize_status(out(MACHINES / "qemu-sata-hdd" / "hdparm_--sanitize-status_dev_sda"))
        is None
    )
    done = parse_hdparm_sanitize_status(
        out(PURGE / "ata-ssd-sanitize" / "after-sanitize" / "hdparm_--sanitize-status_dev_sda")
    )
    assert done is not None and done.succeeded and not done.failed
    failed = parse_hdparm_sanitize_status(
        out(PURGE / "ata-ssd-sanitize-failed" / "after-sanitize" / "hdparm_--sanitize-status_dev_sda")
    )
    assert failed is not None and failed.failed and not failed.succeeded
    busy = parse_hdparm_sanitize_status(
        "State:    SD2 Sanitize operation In Process\nProgress: 0x8000 (50%)\n"
    )
    assert busy is not None and busy.progress == pytest.approx(0.5, abs=1e-3)


def test_hdparm_blank_serial_stays_blank() -> None:
    """A real output whose poster emptied the serial and firmware lines (Crucial m4, corpus): a
    blank field is None, not the next line's label ("Firmware Revision:" read as the serial)."""
    text = out(HERE / "fixtures" / "real" / "ata-crucial-m4-ct128m4ssd2-locked" / "hdparm_-I_dev_sda")
    ata = parse_hdparm_identify(text)
    assert ata.model == "M4-CT128M4SSD2"
    assert ata.serial is None and ata.firmware is None
    assert ata.valid and ata.sectors == 250069680


def test_hdparm_older_name_of_encrypts_all_user_data() -> None:
    """Older hdparm versions print IDENTIFY word 69 bit 4 as "reserved 69[4]" (a real Intel 545s,
    corpus); newer ones as "Device encrypts all user data": the same bit, read the same."""
    real = HERE / "fixtures" / "real"
    old = out(real / "ata-intel-ssdsc2kw512g8-frozen-encrypts" / "hdparm_-I_dev_sda")
    new = out(real / "ata-samsung-840evo-120gb-encrypts" / "hdparm_-I_dev_sda")
    assert "reserved 69[4]" in old and "Device encrypts all user data" in new
    assert parse_hdparm_identify(old).encrypts_all and parse_hdparm_identify(new).encrypts_all
    # Not every reserved bit: the M4 lists none of them and does not encrypt.
    m4 = out(real / "ata-crucial-m4-ct128m4ssd2-locked" / "hdparm_-I_dev_sda")
    assert not parse_hdparm_identify(m4).encrypts_all


def test_recorded_hdparm_lies_are_recognised() -> None:
    r = read_fixture(MACHINES / "qemu-sata-hdd" / "hdparm_--user-master_u_--security-erase_p_dev_sda")
    assert r.returncode == 0 and aborted_command(r.stderr)
    assert not aborted_command(read_fixture(MACHINES / "qemu-sata-hdd" / "hdparm_-N_dev_sda").stderr)
    # A real Crucial MX500 (corpus): hdparm says "Operation started in background", exit 0, but the
    # sense data (response code f0: fixed format with the VALID bit) says ABORTED COMMAND.
    mx500 = HERE / "fixtures" / "real" / "ata-crucial-ct1000mx500ssd1-sanitize-aborted"
    r = read_fixture(mx500 / "hdparm_--yes-i-know-what-i-am-doing_--sanitize-block-erase_dev_sda")
    assert r.returncode == 0 and "started" in r.stdout and aborted_command(r.stderr)
    # Other sense keys are not an abort: the SAS drive's ILLEGAL REQUEST (descriptor format, key 5).
    sas = HERE / "fixtures" / "real" / "sas-seagate-enterprise-hdparm-fails"
    assert not any(
        aborted_command(read_fixture(p).stdout + read_fixture(p).stderr) for p in sas.glob("hdparm_*")
    )


def test_nvme_identify_and_sanitize_log() -> None:
    ctrl = parse_nvme_id_ctrl(out(MACHINES / "qemu-nvme" / "nvme_id-ctrl_dev_nvme0_-o_json"))
    assert ctrl.serial == "TBL-NVME-0001" and ctrl.format_supported
    assert not (ctrl.sanitize_crypto or ctrl.sanitize_block or ctrl.sanitize_overwrite or ctrl.format_crypto)
    ns = parse_nvme_id_ns(out(MACHINES / "qemu-nvme" / "nvme_id-ns_dev_nvme0n1_-o_json"))
    assert ns.nsze == 65536 and ns.lba_size == 512 and ns.deallocated_reads == "zeros"
    assert len(ns.lba_sizes) == 8 and ns.lba_sizes[4] == 4096
    crypto = parse_nvme_id_ctrl(out(PURGE / "nvme-sanitize-crypto" / "nvme_id-ctrl_dev_nvme0_-o_json"))
    assert crypto.sanitize_crypto and not crypto.sanitize_block
    log = parse_nvme_sanitize_log(
        out(PURGE / "nvme-sanitize-failed" / "after-sanitize" / "nvme_sanitize-log_dev_nvme0_-o_json")
    )
    assert log is not None and log.failed and not log.succeeded and "FAILED" in log.describe()
    ok = parse_nvme_sanitize_log(
        out(PURGE / "nvme-sanitize-crypto" / "after-sanitize" / "nvme_sanitize-log_dev_nvme0_-o_json")
    )
    assert ok is not None and ok.succeeded and ok.est_crypto == 10 and ok.est_overwrite is None


def test_sg_opcodes() -> None:
    assert not parse_sg_opcodes(read_fixture(MACHINES / "qemu-scsi" / "sg_opcodes_dev_sda")).reported
    assert not parse_sg_opcodes(read_fixture(MACHINES / "qemu-sata-hdd" / "sg_opcodes_dev_sda")).reported
    listed = parse_sg_opcodes(read_fixture(PURGE / "scsi-sanitize-lies" / "sg_opcodes_dev_sda"))
    assert listed.reported and listed.sanitize_overwrite and not listed.sanitize_crypto


def test_lsblk_of_recorded_machines() -> None:
    kinds = {}
    for case in ("qemu-sata-hdd", "qemu-sata-ssd", "qemu-nvme", "qemu-scsi", "qemu-scsi-lsi", "qemu-usb"):
        (d,) = parse_lsblk(out(MACHINES / case / "lsblk_-J_-b_-O"))
        kinds[case] = (d.transport, d.media_type)
        assert d.size_bytes == 33554432 and d.serial
    assert kinds == {
        "qemu-sata-hdd": ("sata", "hdd"),
        "qemu-sata-ssd": ("sata", "ssd"),
        "qemu-nvme": ("nvme", "nvme"),
        "qemu-scsi": ("scsi", "hdd"),
        "qemu-scsi-lsi": ("scsi", "hdd"),
        "qemu-usb": ("usb", "usb"),
    }


def _caps(case: Path, dev: str) -> tuple[DriveInfo, Capabilities]:
    m = ReplayMachine(case)
    drive = m.resolve(dev, include_loop=False).info
    return drive, probe(drive, m.runner)


def test_probe_keeps_raw_identify_for_the_certificate() -> None:
    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    assert caps.protocol == "nvme" and caps.flash
    assert "nvme id-ctrl /dev/nvme0 -o json" in caps.raw
    assert '"sanicap":0' in caps.raw["nvme id-ctrl /dev/nvme0 -o json"]["stdout"]
    assert caps.raw["nvme sanitize-log /dev/nvme0 -o json"]["returncode"] == 1
    drive, caps = _caps(MACHINES / "qemu-usb", "/dev/sda")
    assert caps.protocol == "usb" and not caps.usb_bridge_sat and not caps.flash  # rotational per the kernel
    assert "hdparm -N /dev/sda" not in caps.raw  # no ATA command beyond IDENTIFY through an unknown bridge


def test_ata_security_erase_level_depends_on_media() -> None:
    drive, caps = _caps(PURGE / "ata-hdd-setpass-lies", "/dev/sda")
    hdd = plan_purge(drive, caps, "nist-purge")
    assert [s.action for s in hdd.steps] == ["ata-secure-erase-enhanced"] and hdd.steps[0].level == "purge"
    assert hdd.steps[0].params["timeout"] >= 120  # from the drive's 2 min estimate
    flash_caps = replace(caps, flash=True)
    ssd = plan_purge(drive, flash_caps, "nist-purge")
    assert ssd.level_expected == "clear" and ssd.overwrite and not ssd.steps
    assert any(a.action == "ata-secure-erase-enhanced" and "only Clear" in a.reason for a in ssd.alternatives)


def test_missing_tool_is_found_at_planning_time() -> None:
    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    no_nvme = replace(caps, tools={**caps.tools, "nvme": False})
    plan = plan_purge(drive, no_nvme, "nist-purge")
    assert plan.level_expected == "clear"
    assert any("nvme is not installed (apt-get install nvme-cli)" in a.reason for a in plan.alternatives)


def test_usb_ata_commands_need_consent_and_a_sat_bridge() -> None:
    drive, caps = _caps(PURGE / "ata-hdd-setpass-lies", "/dev/sda")
    usb_drive = replace(drive, transport="usb", media_type="usb")
    usb_caps = replace(caps, protocol="usb", usb_bridge_sat=True)
    refused = plan_purge(usb_drive, usb_caps, "nist-purge")
    assert not refused.steps and any("--allow-usb-ata" in a.reason for a in refused.alternatives)
    allowed = plan_purge(usb_drive, usb_caps, "nist-purge", PlanOptions(allow_usb_ata=True))
    assert [s.action for s in allowed.steps] == ["ata-secure-erase-enhanced"]


def test_hidden_area_behind_an_unknown_bridge_is_refused() -> None:
    drive, caps = _caps(PURGE / "ata-hdd-hpa-lies", "/dev/sda")
    plan = plan_purge(drive, caps, "nist-clear")
    assert plan.steps[0].action == "remove-hpa" and plan.native_bytes == 65536 * 512
    assert plan.accessible_bytes == 61440 * 512
    with pytest.raises(PurgeRefused, match="Host Protected Area hides 4096 sectors"):
        plan_purge(
            replace(drive, transport="usb"), replace(caps, protocol="usb", usb_bridge_sat=False), "nist-clear"
        )


def test_psid_revert_only_on_an_opal_or_pyrite_drive_and_when_typed() -> None:
    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    # QEMU's drive is no TCG drive (no sedutil-cli here; its OACS has no Security Send/Receive): no
    # PSID revert at all.
    assert caps.tcg is not None and caps.tcg.families == () and caps.tcg.source == "nvme-oacs"
    plan = plan_purge(drive, caps, "nist-purge", PlanOptions(psid="ABCDEF0123456789"))
    assert not any(a.action == "opal-psid-revert" for a in plan.alternatives)
    assert all(s.action != "opal-psid-revert" for s in plan.steps)
    opal = replace(caps, tools={**caps.tools, "sedutil-cli": True}, tcg=TcgStatus(("Opal 2",), "query"))
    plan = plan_purge(drive, opal, "nist-purge")
    assert any(a.action == "opal-psid-revert" and "--psid" in a.reason for a in plan.alternatives)
    typed = plan_purge(drive, opal, "nist-purge", PlanOptions(psid="ABCDEF0123456789"))
    assert typed.steps[0].action == "opal-psid-revert" and "@PSID@" in typed.steps[0].argv
    enterprise = replace(opal, tcg=TcgStatus(("Enterprise",), "scan"))
    plan = plan_purge(drive, enterprise, "nist-purge", PlanOptions(psid="ABCDEF0123456789"))
    (alt,) = [a for a in plan.alternatives if a.action == "opal-psid-revert"]
    assert "not a TCG Opal/Pyrite drive (Enterprise)" in alt.reason


def test_unknown_policy() -> None:
    from erase.purge.errors import UnknownPolicy

    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    with pytest.raises(UnknownPolicy):
        plan_purge(drive, caps, "nist-destroy")


# -- NVMe: the controller must be this drive's, and nothing else on it may be erased ---------------


def _fake_sysfs(root: Path, *, multipath: bool) -> Path:
    """A sysfs tree as the kernel lays it out: namespace nvme0n1 sits on controller nvme1.

    With native multipath the head ``nvme0n1`` is numbered after subsystem 0 while its controller is
    ``nvme1``: the name suggests ``/dev/nvme0``, which here would be another drive.
    """
    ctrl = root / "devices" / "pci0000:00" / "0000:00:04.0" / "nvme" / "nvme1"
    (root / "block").mkdir(parents=True)
    (root / "class" / "nvme").mkdir(parents=True)
    (root / "class" / "nvme" / "nvme1").symlink_to(ctrl)
    if multipath:
        path = ctrl / "nvme0c1n1"
        path.mkdir(parents=True)
        head = root / "devices" / "virtual" / "nvme-subsystem" / "nvme-subsys0" / "nvme0n1"
        (head / "multipath").mkdir(parents=True)
        (head / "multipath" / "nvme0c1n1").symlink_to(path)
        (root / "block" / "nvme0n1").symlink_to(head)
    else:
        ns = ctrl / "nvme0n1"
        ns.mkdir(parents=True)
        (ns / "device").symlink_to(ctrl)
        (root / "block" / "nvme0n1").symlink_to(ns)
    return root


@pytest.mark.parametrize("multipath", [False, True])
def test_nvme_controller_comes_from_sysfs_not_the_name(tmp_path: Path, multipath: bool) -> None:
    sysfs = _fake_sysfs(tmp_path / "sys", multipath=multipath)
    assert nvme_controller_of("/dev/nvme0n1") == "/dev/nvme0"  # the name's guess...
    assert nvme_sysfs_controller("/dev/nvme0n1", sysfs) == "/dev/nvme1"  # ...is not the controller
    assert nvme_sysfs_namespaces("/dev/nvme1", sysfs) == 1
    assert nvme_sysfs_controller("/dev/nvme5n1", sysfs) is None  # unknown to sysfs
    assert nvme_sysfs_namespaces("/dev/nvme5", sysfs) is None
    (tmp_path / "sys" / "class" / "nvme" / "nvme1").resolve().joinpath("nvme0c1n2").mkdir()
    assert nvme_sysfs_namespaces("/dev/nvme1", sysfs) == 2


def test_probe_asks_the_controller_sysfs_names(tmp_path: Path) -> None:
    """The recorded drive answers on /dev/nvme0 only; sysfs says its controller is nvme1: the probe
    must ask nvme1 (and find nothing), never the guessed /dev/nvme0, and plan no firmware erase."""
    m = ReplayMachine(MACHINES / "qemu-nvme")
    drive = m.resolve("/dev/nvme0n1", include_loop=False).info
    caps = probe(drive, m.runner, sysfs=_fake_sysfs(tmp_path / "sys", multipath=True))
    assert caps.nvme_ctrl_dev == "/dev/nvme1" and caps.nvme_ctrl_source == "sysfs"
    asked = [list(a) for a in m.runner.log]  # type: ignore[attr-defined]
    assert ["nvme", "id-ctrl", "/dev/nvme1", "-o", "json"] in asked
    assert not any("/dev/nvme0" in a for a in asked), asked
    assert caps.nvme_ctrl is None
    plan = plan_purge(drive, caps, "nist-purge")
    assert plan.level_expected == "clear" and not plan.steps


def test_recorded_nvme_controller_is_the_drives() -> None:
    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    recorded = parse_nvme_id_ctrl(
        read_fixture(MACHINES / "qemu-nvme" / "nvme_id-ctrl_dev_nvme0_-o_json").stdout
    )
    assert recorded.serial == "TBL-NVME-0001" == drive.serial  # id-ctrl pads sn with spaces
    assert caps.nvme_ctrl_dev == "/dev/nvme0" and caps.nvme_ctrl_source == "name"  # replay: no sysfs
    assert caps.nvme_namespaces == 1  # nvme list: one namespace with this serial (id-ctrl nn is 256)
    assert caps.nvme_ctrl is not None and caps.nvme_ctrl.fna == 0
    plan = plan_purge(drive, caps, "nist-purge")
    assert plan.level_expected == "purge"
    (step,) = plan.steps
    assert step.action == "nvme-format-erase"
    assert step.params["controller"] == "/dev/nvme0" and step.params["serial"] == "TBL-NVME-0001"


@pytest.mark.parametrize("case", [MACHINES / "qemu-nvme", PURGE / "nvme-sanitize-crypto"])
def test_nvme_controller_with_another_serial_is_refused(case: Path) -> None:
    drive, caps = _caps(case, "/dev/nvme0n1")
    assert plan_purge(drive, caps, "nist-purge").level_expected == "purge"
    assert caps.nvme_ctrl is not None
    other = replace(caps, nvme_ctrl=replace(caps.nvme_ctrl, serial="SOMEONE-ELSE"))
    plan = plan_purge(drive, other, "nist-purge")
    assert plan.level_expected == "clear" and not plan.steps and plan.overwrite
    nvme = [a for a in plan.alternatives if a.action.startswith("nvme-")]
    assert any("the controller's serial does not match this drive" in a.reason for a in nvme)
    assert "the controller's serial does not match this drive" in plan.level_note
    unreadable = replace(caps, nvme_ctrl=replace(caps.nvme_ctrl, serial=None))
    assert plan_purge(drive, unreadable, "nist-purge").level_expected == "clear"


def test_nvme_list_counts_the_namespaces_of_one_controller() -> None:
    text = (
        '{"Devices": [{"DevicePath": "/dev/nvme0n1", "SerialNumber": "A "},'
        ' {"DevicePath": "/dev/nvme0n2", "SerialNumber": "A"},'
        ' {"DevicePath": "/dev/nvme1n1", "SerialNumber": "B"}]}'
    )
    assert nvme_list_namespaces(text, "A") == 2
    assert nvme_list_namespaces(text, "B") == 1
    assert nvme_list_namespaces("{}", "A") is None


def test_subsystem_wide_commands_are_refused_with_other_namespaces() -> None:
    # Sanitize always erases the whole subsystem.
    drive, caps = _caps(PURGE / "nvme-sanitize-crypto", "/dev/nvme0n1")
    assert [s.action for s in plan_purge(drive, caps, "nist-purge").steps] == ["nvme-sanitize-crypto"]
    for count, why in (
        (2, "other namespaces on this controller would be erased too (2 namespaces)"),
        (None, "cannot be counted: other namespaces would be erased too"),
    ):
        plan = plan_purge(drive, replace(caps, nvme_namespaces=count), "nist-purge")
        sanitize = {a.action: a.reason for a in plan.alternatives if a.action.startswith("nvme-sanitize")}
        assert why in sanitize["nvme-sanitize-crypto"]
        # Format with FNA=0 acts on this namespace only: still allowed.
        assert [s.action for s in plan.steps] == ["nvme-format-erase"]
    # Format when FNA says it applies to every namespace (bit 0): refused unless one namespace.
    drive, caps = _caps(MACHINES / "qemu-nvme", "/dev/nvme0n1")
    assert caps.nvme_ctrl is not None
    all_ns = replace(caps, nvme_ctrl=replace(caps.nvme_ctrl, fna=0x1))
    assert [s.action for s in plan_purge(drive, all_ns, "nist-purge").steps] == ["nvme-format-erase"]
    plan = plan_purge(drive, replace(all_ns, nvme_namespaces=3), "nist-purge")
    assert plan.level_expected == "clear" and not plan.steps
    fmt = {a.action: a.reason for a in plan.alternatives}
    assert "other namespaces on this controller would be erased too" in fmt["nvme-format-erase"]


# -- formats a parser does not know: "cannot tell", never a guessed capability ----------------------


def test_hdparm_question_mark_supported_is_not_supported() -> None:
    # hdparm 9.x prints "\t(?)\tsupported" when word 128 is set but its "supported" bit is clear.
    text = out(PURGE / "ata-hdd-frozen" / "hdparm_-I_dev_sda").replace(
        "\t\tsupported\n", "\t(?)\tsupported\n", 1
    )
    assert "(?)\tsupported" in text
    sec = parse_hdparm_identify(text).security
    assert not sec.supported and sec.frozen


NOT_ID_CTRL = [
    ("", "printed nothing"),  # nvme-cli built without json-c prints nothing for -o json
    ('{\n  "vid":7439,\n  "sn":"x",\n', "did not print a JSON document"),  # cut short
    ('{"vid": 1, "oacs": 23, "fna": 0}', "no sanicap field"),  # an older or foreign JSON shape
    ('{"oacs": 23, "sanicap": "yes", "fna": 0}', "not a number"),
    ("opcode       : 06\nflags        : 00\n", "neither JSON nor"),  # nvme-cli 2.8 -v prints this first
    ("[1, 2]", "not an object"),
]


@pytest.mark.parametrize(("text", "why"), NOT_ID_CTRL)
def test_nvme_id_ctrl_in_an_unknown_form_cannot_tell(text: str, why: str) -> None:
    with pytest.raises(UnrecognisedOutput, match=why):
        parse_nvme_id_ctrl(text)


def test_nvme_registers_printed_as_hex_strings_are_read() -> None:
    ctrl = parse_nvme_id_ctrl('{"oacs": "0x17", "sanicap": "0x60000003", "fna": 4, "sn": "A1 "}')
    assert (ctrl.oacs, ctrl.sanicap, ctrl.fna, ctrl.serial) == (0x17, 0x60000003, 4, "A1")
    assert ctrl.sanitize_crypto and ctrl.sanitize_block and ctrl.format_crypto


def test_nvme_sanitize_log_sstat_as_nvme_cli_prints_it() -> None:
    """nvme-cli decodes SSTAT into an object (json_sanitize_log): the register is rebuilt from it."""
    done = {
        "global_erased": 1,
        "no_cmplted_passes": 0,
        "status": "(1) Most Recent Sanitize Command Completed",
    }
    log = parse_nvme_sanitize_log(json.dumps({"nvme0": {"sprog": 65535, "sstat": done}}))
    assert log is not None and log.sstat == 0x101 and log.succeeded and log.global_data_erased
    # Some nvme-cli versions use the status text itself as the member's name.
    failed = {
        "global_erased": 0,
        "no_cmplted_passes": 2,
        "Most Recent Sanitize Command Failed.": "(3) failed",
    }
    log = parse_nvme_sanitize_log(json.dumps({"nvme0": {"sprog": 0, "sstat": failed}}))
    assert log is not None and log.failed and log.sstat == 3 | 2 << 3
    with pytest.raises(UnrecognisedOutput, match="SSTAT"):
        parse_nvme_sanitize_log(json.dumps({"nvme0": {"sstat": {"status": "done"}}}))
    with pytest.raises(UnrecognisedOutput):
        parse_nvme_sanitize_log("Sanitize log of a future nvme-cli\n")


def test_nvme_id_ns_without_formats_cannot_tell() -> None:
    with pytest.raises(UnrecognisedOutput, match="lbafs"):
        parse_nvme_id_ns('{"nsze": 65536, "flbas": 0}')
    with pytest.raises(UnrecognisedOutput, match="ds"):
        parse_nvme_id_ns('{"nsze": 65536, "flbas": 0, "lbafs": [{"ms": 0}]}')


def test_sg_opcodes_without_a_command_table_says_nothing() -> None:
    listing = CommandResult(
        ("sg_opcodes", "/dev/sda"), 0, "  SEAGATE   ST600MP0036   KT3A\n  bad field in cdb\n"
    )
    assert not parse_sg_opcodes(listing).reported


def test_probe_notes_why_it_cannot_tell(tmp_path: Path) -> None:
    case = tmp_path / "nvme"
    shutil.copytree(MACHINES / "qemu-nvme", case)
    write_fixture(case, CommandResult(("nvme", "id-ctrl", "/dev/nvme0", "-o", "json"), 0, ""))
    drive = next(d for d in parse_lsblk(out(case / "lsblk_-J_-b_-O")) if d.path == "/dev/nvme0n1")
    caps = probe(drive, ReplayRunner(case), sysfs=None)
    assert caps.nvme_ctrl is None
    assert any(n.startswith("cannot tell: nvme id-ctrl printed nothing") for n in caps.notes), caps.notes
    plan = plan_purge(drive, caps, "nist-purge")
    assert plan.level_expected == "clear" and not plan.steps


def test_a_security_feature_set_without_its_section_is_cannot_tell_not_unsupported(tmp_path: Path) -> None:
    """A real WD1200JD output with its Security section cut off (as a truncated paste would be):
    the feature list still says the drive has the Security feature set, so nothing is 'not supported'."""
    real = HERE / "fixtures" / "real" / "ata-wdc-wd1200jd" / "hdparm_-I_dev_sda"
    r = read_fixture(real)
    cut = r.stdout[: r.stdout.index("Security:")]
    case = tmp_path / "cut"
    shutil.copytree(MACHINES / "qemu-sata-hdd", case)
    write_fixture(case, CommandResult(("hdparm", "-I", "/dev/sda"), 0, cut))
    drive = next(d for d in parse_lsblk(out(case / "lsblk_-J_-b_-O")) if d.path == "/dev/sda")
    caps = probe(drive, ReplayRunner(case), sysfs=None)
    assert caps.ata is not None and caps.ata.security_feature and not caps.ata.security.reported
    plan = plan_purge(drive, caps, "nist-purge")
    reasons = {a.action: a.reason for a in plan.alternatives}
    why = "cannot tell: hdparm -I lists the Security feature set but prints no Security section"
    assert reasons["ata-secure-erase"] == why and reasons["ata-secure-erase-enhanced"] == why
    assert why in plan.level_note
