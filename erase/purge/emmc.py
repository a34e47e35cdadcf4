"""What an eMMC says about its erase commands: ``mmc extcsd read DEV`` (mmc-utils).  Pure.

The Extended CSD register (JEDEC JESD84-B51, eMMC 5.1) holds, among others:

* ``EXT_CSD_REV`` [192]: 5 = eMMC 4.41, 6 = 4.5/4.51, 7 = 5.0, 8 = 5.1; mmc-utils prints it in its
  banner (``Extended CSD rev 1.7 (MMC 5.0)``);
* ``SEC_FEATURE_SUPPORT`` [231]: bit 0 ``SECURE_ER_EN`` (secure erase and secure trim), bit 2
  ``SEC_GB_CL_EN`` (secure trim's garbage collection), bit 4 ``SEC_BD_BLK_EN`` (secure bad-block
  management), bit 6 ``SEC_SANITIZE`` (the SANITIZE operation, eMMC 4.5 and later);
* ``ERASED_MEM_CONT`` [181]: what an erased block reads as (0: zeros, 1: ones);
* ``SEC_COUNT`` [215:212]: the user area in 512-byte sectors.

Secure erase and secure trim became obsolete in eMMC 4.51, replaced by SANITIZE, which physically
removes the data of every *unmapped* block: after every block has been discarded, nothing written
by the host remains.

What mmc-utils prints depends on its version and on the device's revision, and the parser says
"cannot tell" (:class:`UnrecognisedOutput`, with the reason) rather than guess:

* an mmc-utils older than the device prints *nothing* and exits 0: ``do_read_extcsd`` maps the
  revisions it knows to a name and silently stops on any other (releases before 2014 know no
  eMMC 5.0, later ones no 5.1 until it was added; EXT_CSD rev 4 is never printed);
* SEC_FEATURE_SUPPORT is printed only from EXT_CSD rev 5 (eMMC 4.41) on;
* one fork prints the sector count twice (``Sector Count [SEC_COUNT: 0x00e90000] 15269888``);
  the bracketed hex value is the one read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from erase.purge.errors import UnrecognisedOutput

SECURE_ER_EN = 0x01
SEC_GB_CL_EN = 0x04
SEC_BD_BLK_EN = 0x10
SEC_SANITIZE = 0x40

#: EXT_CSD_REV of eMMC 4.5, the first revision with SANITIZE.
REV_4_5 = 6

_VERSIONS = {5: "4.41", 6: "4.5", 7: "5.0", 8: "5.1"}


@dataclass(frozen=True)
class EmmcExtCsd:
    rev: int  # EXT_CSD_REV
    sec_feature_support: int
    erased_mem_cont: int | None  # 0 zeros, 1 ones; None when not printed
    sectors: int | None  # SEC_COUNT

    @property
    def version(self) -> str:
        return _VERSIONS.get(self.rev, f"EXT_CSD rev {self.rev}")

    @property
    def sanitize(self) -> bool:
        return self.rev >= REV_4_5 and bool(self.sec_feature_support & SEC_SANITIZE)

    @property
    def secure_erase(self) -> bool:
        return bool(self.sec_feature_support & SECURE_ER_EN)

    @property
    def secure_trim(self) -> bool:
        return self.secure_erase and bool(self.sec_feature_support & SEC_GB_CL_EN)

    @property
    def erased_reads(self) -> str:
        """What an erased block reads as: 'zeros', 'ones', or 'zeros-or-ones' when not printed."""
        if self.erased_mem_cont is None:
            return "zeros-or-ones"
        return {0: "zeros", 1: "ones"}.get(self.erased_mem_cont, "zeros-or-ones")


def _field(text: str, name: str) -> int | None:
    m = re.search(rf"\[{name}\]?:\s*0x([0-9a-fA-F]+)\]?", text)
    return int(m.group(1), 16) if m else None


def _revision(text: str) -> int:
    rev = _field(text, "EXT_CSD_REV")
    if rev is None:
        m = re.search(r"Extended CSD rev 1\.(\d+)", text)
        rev = int(m.group(1)) if m else None
    if rev is not None:
        return rev
    if not text.strip():
        raise UnrecognisedOutput(
            "mmc extcsd read printed nothing: this mmc-utils stops silently on an EXT_CSD revision it "
            "does not know (the eMMC is newer than the tool): cannot tell what the eMMC can erase; "
            "a newer mmc-utils can"
        )
    raise UnrecognisedOutput(
        "mmc extcsd read gives no EXT_CSD_REV (no 'Extended CSD rev' banner): an output this parser "
        "does not know, so it cannot tell what the eMMC can erase"
    )


def parse_mmc_extcsd(text: str) -> EmmcExtCsd:
    """``mmc extcsd read DEV``.  Raises :class:`UnrecognisedOutput` without a revision or the
    security byte: what the device can erase is then unknown, never assumed."""
    rev = _revision(text)
    sec = _field(text, "SEC_FEATURE_SUPPORT")
    if sec is None:
        why = (
            f"; mmc-utils prints it only from EXT_CSD rev 5 (eMMC 4.41) and this is rev {rev}, too old "
            "for SANITIZE (eMMC 4.5)"
            if rev < 5
            else ""
        )
        raise UnrecognisedOutput(
            f"mmc extcsd read gives no SEC_FEATURE_SUPPORT{why}: cannot tell what the eMMC can erase"
        )
    return EmmcExtCsd(
        rev=rev,
        sec_feature_support=sec,
        erased_mem_cont=_field(text, "ERASED_MEM_CONT"),
        sectors=_field(text, "SEC_COUNT"),
    )
