"""TCG Opal PSID revert through the Linux kernel's own Opal support: no sedutil-cli needed.

Linux sends TCG Opal commands itself (block/sed-opal.c, ``CONFIG_BLK_SED_OPAL``, on in Debian's
kernels) to the drives it gave an Opal device: NVMe controllers with Security Send/Receive, and sd
disks that support SECURITY PROTOCOL IN/OUT, SATA drives included through libata's translation
(without the ``libata.allow_tpm=1`` that sedutil-cli's ATA pass-through needs).  One ioctl reverts
the drive to its factory state with the PSID printed on its label, which crypto-erases everything
it holds (TCG Opal SSC, Revert with the PSID authority)::

    IOC_OPAL_PSID_REVERT_TPR = _IOW('p', 232, struct opal_key)
    struct opal_key { __u8 lr; __u8 key_len; __u8 __align[6]; __u8 key[OPAL_KEY_MAX = 256]; }

(newer headers name the first of the six alignment bytes ``key_type``; 0 is ``OPAL_INCLUDED``, the
key is in ``key``).  The ioctl returns 0, a negative errno (ENOTTY or EOPNOTSUPP when the device has
no Opal support the kernel can use), or a positive TCG method status from the drive (0x01
NOT_AUTHORIZED for a wrong PSID).  The kernel's Opal code only knows the Opal 1 and Opal 2 SSCs:
Pyrite and Opalite drives answer EOPNOTSUPP (the planner sends them to sedutil-cli).

The station runs this module as a command (``tabula-opal psid-revert DEV PSID``, or ``python -m
erase.purge.sedopal``) through its one command runner, so dry-run, recording and replay treat it as
any firmware tool.  It prints one line, ``psid-revert result=RESULT status=STATUS``
(:class:`erase.purge.tcg.RevertResult`), and exits 0 (reverted), 3 (PSID refused), 4 (no Opal
support for this device), 2 (refused before anything was sent: bad PSID, not a block device) or 1
(any other error).  The PSID is never printed.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import os
import stat
import struct
import sys
from collections.abc import Sequence

from erase.purge.errors import PurgeError
from erase.purge.tcg import RevertResult, errno_result, psid_problem, tcg_result

OPAL_KEY_MAX = 256
#: ``struct opal_key``: lr, key_len, six alignment bytes, the key (native byte order, no padding).
OPAL_KEY = struct.Struct(f"=BB6x{OPAL_KEY_MAX}s")

# asm-generic/ioctl.h, the encoding of x86, arm and riscv (the station's architectures).
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_WRITE = 1


def iow(kind: str, number: int, size: int) -> int:
    """``_IOW(kind, number, size)``: an ioctl that passes ``size`` bytes to the kernel."""
    return (
        _IOC_WRITE << _IOC_DIRSHIFT
        | size << _IOC_SIZESHIFT
        | ord(kind) << _IOC_TYPESHIFT
        | number << _IOC_NRSHIFT
    )


IOC_OPAL_PSID_REVERT_TPR = iow("p", 232, OPAL_KEY.size)


class Refused(PurgeError):
    """Input refused before anything was sent to the device."""

    hint = "nothing was sent to the drive: type the PSID printed on its label, for a drive of this machine"

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.result = RevertResult("refused", status)


def opal_key(psid: str) -> bytearray:
    """The ``struct opal_key`` carrying ``psid`` (locking range 0); :class:`Refused` for a PSID
    no drive label has."""
    problem = psid_problem(psid)
    if problem is not None:
        raise Refused("input:psid", problem)
    key = psid.encode("ascii")
    return bytearray(OPAL_KEY.pack(0, len(key), key))


def _open_block_device(device: str) -> int:
    """An O_RDWR descriptor of ``device`` (as sedutil-cli opens it); :class:`Refused` when it is
    missing or not a block device.  Nothing is written through it."""
    try:
        st = os.stat(device)
    except OSError as exc:
        raise Refused("input:device", f"{device}: {exc.strerror}") from exc
    if not stat.S_ISBLK(st.st_mode):
        raise Refused("input:device", f"{device} is not a block device")
    try:
        return os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise Refused("input:device", f"{device}: {exc.strerror}") from exc


def psid_revert(device: str, psid: str) -> RevertResult:
    """Send the PSID revert to ``device``; the result as the kernel and the drive gave it.

    Raises :class:`Refused` (nothing sent) for a PSID no label has, a missing device or a path
    that is not a block device.
    """
    key = opal_key(psid)
    fd = _open_block_device(device)
    try:
        ret = fcntl.ioctl(fd, IOC_OPAL_PSID_REVERT_TPR, key, True)
    except OSError as exc:
        return errno_result(exc.errno or 0, errno.errorcode.get(exc.errno or 0, ""))
    finally:
        os.close(fd)
        key[:] = bytes(len(key))  # the PSID does not stay in this process's memory longer than needed
    return tcg_result(ret)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tabula-opal",
        description="TCG Opal PSID revert through the Linux kernel (erases everything on the drive)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    revert = sub.add_parser("psid-revert", help="revert DEVICE to factory state with the PSID of its label")
    revert.add_argument("device")
    revert.add_argument("psid")
    args = parser.parse_args(argv)
    try:
        result = psid_revert(args.device, args.psid)
    except Refused as exc:
        print(f"tabula-opal: {exc.message}", file=sys.stderr)
        result = exc.result
    print(result.line)
    if result.result not in ("ok", "refused"):
        print(f"tabula-opal: {result.explanation}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
