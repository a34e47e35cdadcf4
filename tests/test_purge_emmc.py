"""``mmc extcsd read`` across mmc-utils versions and eMMC revisions, and what the planner makes of it.

The real outputs are the eMMC cases of tests/fixtures/real (see its README; test_real_corpus.py
checks each one against what a person read).  Here they are varied the way other mmc-utils versions
print them, following mmc-utils' own ``do_read_extcsd`` (read through look-ups of its mmc_cmds.c):
an mmc-utils older than the device prints nothing; SEC_FEATURE_SUPPORT is printed only from
EXT_CSD rev 5; a fork appends the decimal sector count.  An eMMC 4.41 (rev 5) output was not found
in public material, so its two lines are built from mmc-utils' format strings and say so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from erase.purge.emmc import EmmcExtCsd, parse_mmc_extcsd
from erase.purge.errors import UnrecognisedOutput
from erase.purge.planner import plan_purge
from erase.purge.probe import TOOLS, Capabilities, probe
from host.identity import DriveInfo
from host.runner import CommandResult, ReplayRunner, read_fixture, write_fixture
from tests.real_corpus_plans import case_drive

REAL = Path(__file__).parent / "fixtures" / "real"
SAMSUNG = REAL / "emmc-samsung-8gb-mmc51-sanitize" / "mmc_extcsd_read_dev_mmcblk0"
ARGV = ["mmc", "extcsd", "read", "/dev/mmcblk0"]


def _real() -> str:
    return read_fixture(SAMSUNG).stdout


def _drive() -> DriveInfo:
    """The eMMC of the Samsung case, as discovery presents it."""
    return case_drive(SAMSUNG.parent, {"extcsd": {"sectors": 0x00E90000}})


def _caps_from(tmp_path: Path, stdout: str) -> Capabilities:
    """The probe of an eMMC whose ``mmc extcsd read`` printed ``stdout`` (exit 0)."""
    write_fixture(tmp_path, CommandResult(tuple(ARGV), 0, stdout, ""))
    return probe(_drive(), ReplayRunner(tmp_path, tools=frozenset(TOOLS)), sysfs=None)


def test_a_fork_printing_the_sector_count_twice_is_read_from_the_hex_value() -> None:
    line = "Sector Count [SEC_COUNT: 0x00e90000]"
    assert line + "\n" in _real()
    ext = parse_mmc_extcsd(_real().replace(line, f"{line} 15269888"))
    assert ext.sectors == 0x00E90000 == 15269888


def test_an_mmc_utils_older_than_the_emmc_prints_nothing_and_the_probe_cannot_tell(tmp_path: Path) -> None:
    with pytest.raises(UnrecognisedOutput, match="printed nothing: this mmc-utils stops silently"):
        parse_mmc_extcsd("")
    caps = _caps_from(tmp_path, "")
    assert caps.emmc is None and "printed nothing" in caps.unknown["emmc"]
    plan = plan_purge(_drive(), caps, "nist-purge")
    assert plan.steps == () and plan.overwrite and plan.level_expected == "clear"
    why = {a.action: a.reason for a in plan.alternatives}
    assert "cannot tell" in why["emmc-sanitize"] and "printed nothing" in why["emmc-sanitize"]


def test_an_output_without_the_banner_is_not_guessed_from() -> None:
    body = _real().split("=============================================\n\n", 1)[1]
    assert "Secure Feature support [SEC_FEATURE_SUPPORT: 0x55]" in body
    with pytest.raises(UnrecognisedOutput, match="no 'Extended CSD rev' banner"):
        parse_mmc_extcsd(body)


def test_an_emmc_4_3_has_no_security_byte_and_the_reason_says_why() -> None:
    # mmc-utils prints SEC_FEATURE_SUPPORT only for ext_csd_rev >= 5: the real output under the
    # banner it prints for rev 3, without that line (the other rev >= 5 lines do not matter here).
    text = _real().replace("rev 1.8 (MMC 5.1)", "rev 1.3 (MMC 4.3)")
    text = "\n".join(line for line in text.splitlines() if "SEC_FEATURE_SUPPORT" not in line)
    with pytest.raises(
        UnrecognisedOutput, match="only from EXT_CSD rev 5 .* this is rev 3, too old for SANITIZE"
    ):
        parse_mmc_extcsd(text)


def test_an_emmc_4_41_without_sanitize_is_cleared_by_overwrite(tmp_path: Path) -> None:
    # Constructed: the two lines mmc-utils prints for such a device (format strings of do_read_extcsd),
    # SEC_FEATURE_SUPPORT 0x15 = secure erase, secure trim, secure bad-block management, no bit 6.
    text = "  Extended CSD rev 1.5 (MMC 4.41)\nSecure Feature support [SEC_FEATURE_SUPPORT: 0x15]\n"
    ext = parse_mmc_extcsd(text)
    assert (ext.version, ext.sanitize, ext.secure_erase, ext.secure_trim) == ("4.41", False, True, True)
    assert ext.erased_mem_cont is None and ext.erased_reads == "zeros-or-ones"
    plan = plan_purge(_drive(), _caps_from(tmp_path, text), "nist-purge")
    why = {a.action: (a.level, a.reason) for a in plan.alternatives}
    assert why["emmc-sanitize"][1] == "SANITIZE needs eMMC 4.5 or later (this is eMMC 4.41)"
    assert why["emmc-secure-erase"][0] == "clear"
    assert plan.level_expected == "clear" and plan.overwrite


def test_sanitize_needs_bit_6_even_on_an_emmc_5_1() -> None:
    ext = EmmcExtCsd(rev=8, sec_feature_support=0x15, erased_mem_cont=0, sectors=None)
    assert not ext.sanitize and ext.secure_erase and ext.secure_trim
    assert EmmcExtCsd(rev=8, sec_feature_support=0x41, erased_mem_cont=1, sectors=None).erased_reads == "ones"
    assert not EmmcExtCsd(rev=8, sec_feature_support=0x40, erased_mem_cont=0, sectors=None).secure_trim
