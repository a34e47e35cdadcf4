"""TCG storage (Opal, Pyrite, Enterprise) from Level 0 discovery.  Pure.

Level 0 discovery is the drive's answer to a security-protocol-1, ComID-0x0001 receive (TCG Storage
Architecture Core Spec 3.3.6): a 48-byte header (4-byte length of what follows it, 4-byte revision,
reserved and vendor bytes), then feature descriptors (2-byte code, version in the high nibble of byte
2, length of the rest in byte 3).  The Security Subsystem Class a drive implements is named by its
descriptor code (Opal 1 0x0200, Opal 2 0x0203, Enterprise 0x0100, Opalite 0x0301, Pyrite 1 0x0302,
Pyrite 2 0x0303, Ruby 0x0304), and the Locking descriptor (0x0002) carries LockingSupported,
LockingEnabled, Locked, MediaEncryption, MBREnabled and MBRDone in its first byte.

Three ways to read it, tried by :mod:`erase.purge.probe` in this order:

* ``sedutil-cli --query DEV`` prints the discovery decoded: one ``<Name> function (0xCODE)`` header
  per feature descriptor and, under ``Locking function (0x0002)``, ``Locked = Y/N, LockingEnabled =
  Y/N, ... MediaEncrypt = Y/N``; ``sedutil-cli --scan`` prints one line per drive, the SSC column
  (``No``, or letters: ``1`` Opal 1, ``2`` Opal 2, ``E`` Enterprise, ``L`` Opalite, ``p`` Pyrite 1,
  ``P`` Pyrite 2, ``r`` Ruby).  Debian 12 does not package sedutil, so the live image has neither;
* without sedutil, the raw discovery through tools the live image has: ``nvme security-recv`` (NVMe
  Security Receive; nvme-cli prints the buffer as a hex dump, :func:`nvme_hexdump_bytes`) and
  ``sg_raw`` (SCSI SECURITY PROTOCOL IN, or ATA TRUSTED RECEIVE inside ATA PASS-THROUGH(16) for
  SATA behind USB bridges; sg_raw prints the buffer on stderr, :func:`sg_raw_hexdump_bytes`), read
  by :func:`parse_level0`.  A buffer that does not hold a well-formed discovery (empty, zeros, a
  length or revision that does not fit, a descriptor crossing the end, the Locking descriptor cut)
  raises :class:`UnrecognisedOutput`: "cannot tell", never a guessed capability.

A PSID revert (TCG Opal/Pyrite ``Revert`` with the PSID authority) is what this station offers on
such a drive: it is only planned when one of these says Opal, Opalite or Pyrite.  It runs through
sedutil-cli when installed, else through the kernel's Opal ioctl (:mod:`erase.purge.sedopal`, Opal 1
and 2 only), whose one-line result (:class:`RevertResult`) is defined and read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from erase.purge.errors import UnrecognisedOutput

_SCAN_LETTERS = {
    "1": "Opal 1",
    "2": "Opal 2",
    "E": "Enterprise",
    "L": "Opalite",
    "p": "Pyrite 1",
    "P": "Pyrite 2",
    "r": "Ruby",
}
# Feature codes of Level 0 discovery (TCG Storage Architecture Core Spec and the SSCs).
_FEATURE_CODES = {
    0x0100: "Enterprise",
    0x0200: "Opal 1",
    0x0203: "Opal 2",
    0x0301: "Opalite",
    0x0302: "Pyrite 1",
    0x0303: "Pyrite 2",
    0x0304: "Ruby",
}


@dataclass(frozen=True)
class TcgStatus:
    """What Level 0 discovery says: the security subsystem classes and the locking state."""

    families: tuple[str, ...]  # e.g. ("Opal 2",); () for a drive that is not a TCG drive
    source: str  # "query", "scan", "query+scan" (sedutil-cli) or "level0" (the raw discovery)
    locked: bool | None = None
    locking_enabled: bool | None = None
    media_encrypt: bool | None = None
    locking_supported: bool | None = None  # the Locking descriptor's bits (raw discovery only)
    mbr_enabled: bool | None = None
    mbr_done: bool | None = None
    features: tuple[int, ...] = ()  # every feature code of the raw discovery, in its order
    missing_bytes: int = 0  # bytes of the last descriptor's payload the buffer did not hold

    @property
    def opal_or_pyrite(self) -> bool:
        """A drive whose PSID revert Tabula offers (Opal, Opalite, Pyrite)."""
        return any(f.startswith(("Opal", "Pyrite")) for f in self.families)

    @property
    def describe(self) -> str:
        if not self.families:
            return "not a TCG drive"
        text = "TCG " + ", ".join(self.families)
        if self.locked:
            text += ", LOCKED"
        elif self.locking_enabled:
            text += ", locking enabled"
        return text


def _yes(text: str, name: str) -> bool | None:
    m = re.search(rf"\b{name}\s*=\s*([YN])\b", text)
    return None if m is None else m.group(1) == "Y"


def parse_sedutil_query(text: str) -> TcgStatus | None:
    """``sedutil-cli --query DEV``; None when it printed no Level 0 discovery (not a TCG drive, or
    a drive sedutil cannot talk to: it says "Invalid or unsupported disk" for both)."""
    codes = [int(c, 16) for c in re.findall(r"function \(0x([0-9a-fA-F]{4})\)", text)]
    if not codes:
        return None
    families = tuple(dict.fromkeys(_FEATURE_CODES[c] for c in codes if c in _FEATURE_CODES))
    return TcgStatus(
        families=families,
        source="query",
        locked=_yes(text, "Locked"),
        locking_enabled=_yes(text, "LockingEnabled"),
        media_encrypt=_yes(text, "MediaEncrypt"),
    )


def merged(query: TcgStatus | None, scan: TcgStatus | None) -> TcgStatus | None:
    """The query's locking state with the scan's families when the query shows none (a partial
    query, or a sedutil version that prints no SSC header)."""
    if query is None:
        return scan
    if query.families or scan is None:
        return query
    return TcgStatus(scan.families, "query+scan", query.locked, query.locking_enabled, query.media_encrypt)


def parse_sedutil_scan(text: str, device: str) -> TcgStatus | None:
    """The line of ``device`` in ``sedutil-cli --scan``; None when the scan does not list it."""
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or tokens[0] != device:
            continue
        if len(tokens) < 2 or tokens[1] == "No":
            return TcgStatus(families=(), source="scan")
        flags = ""
        for token in tokens[1:]:
            if not set(token) <= set(_SCAN_LETTERS):
                break
            flags += token
        return TcgStatus(families=tuple(_SCAN_LETTERS[c] for c in dict.fromkeys(flags)), source="scan")
    return None


# -- the raw Level 0 discovery ---------------------------------------------------------------------

LEVEL0_HEADER = 48
_TPER = 0x0001
_LOCKING = 0x0002


@dataclass(frozen=True)
class Feature:
    """One feature descriptor: its code, version and payload (``cut``: the buffer ended inside it)."""

    code: int
    version: int
    payload: bytes
    cut: bool = False


def _be(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "big")


def _header_total(data: bytes) -> int:
    """The discovery's whole size by its header (length field + 4); UnrecognisedOutput when the
    buffer holds no discovery Tabula can read."""
    if len(data) < 8 or not any(data):
        raise UnrecognisedOutput(
            f"the Level 0 discovery is empty or all zeros ({len(data)} bytes): not a TCG answer"
        )
    length = _be(data, 0, 4)
    if length + 4 < LEVEL0_HEADER:
        raise UnrecognisedOutput(
            f"the Level 0 discovery says it is {length} bytes long, shorter than its header"
        )
    if len(data) < LEVEL0_HEADER:
        raise UnrecognisedOutput(f"the Level 0 discovery is cut inside its header ({len(data)} of 48 bytes)")
    revision = _be(data, 4, 4)
    if revision != 1:
        raise UnrecognisedOutput(
            f"Level 0 discovery data structure revision {revision}; Tabula reads revision 1"
        )
    return length + 4


def level0_features(data: bytes) -> tuple[list[Feature], int]:
    """The feature descriptors of a discovery buffer and its size by the header.

    A buffer shorter than the header says is read only when it ends inside the payload of the last
    descriptor (every feature code is then known; :func:`parse_level0` refuses a cut Locking
    descriptor).  Anything else that does not fit raises :class:`UnrecognisedOutput`.
    """
    total = _header_total(data)
    features: list[Feature] = []
    offset = LEVEL0_HEADER
    while offset < total:
        if offset + 4 > len(data):
            raise UnrecognisedOutput(
                f"the Level 0 discovery is cut at byte {len(data)} of {total}, before a feature "
                "descriptor: the features after it are unknown"
            )
        end = offset + 4 + data[offset + 3]
        code = _be(data, offset, 2)
        if end > total:
            raise UnrecognisedOutput(
                f"feature 0x{code:04x} at byte {offset} runs to byte {end}, past the end the header "
                f"gives ({total}): inconsistent lengths"
            )
        features.append(Feature(code, data[offset + 2] >> 4, data[offset + 4 : end], end > len(data)))
        offset = end
    return features, total


def _locking_bits(features: list[Feature]) -> dict[str, bool | None]:
    names = ("locking_supported", "locking_enabled", "locked", "media_encrypt", "mbr_enabled", "mbr_done")
    locking = [f for f in features if f.code == _LOCKING]
    if not locking:
        return dict.fromkeys(names)
    if locking[0].cut or not locking[0].payload:
        raise UnrecognisedOutput("the Level 0 discovery's Locking descriptor is cut short: cannot tell")
    byte = locking[0].payload[0]
    return {name: bool(byte >> bit & 1) for bit, name in enumerate(names)}


def parse_level0(data: bytes) -> TcgStatus:
    """A Level 0 discovery buffer (raw bytes, as the drive sent them).

    Raises :class:`UnrecognisedOutput` when it is not one Tabula can read: empty or zeros, a header
    that does not fit, descriptors crossing the end, no TPer descriptor, a feature that appears twice.
    """
    features, total = level0_features(data)
    codes = [f.code for f in features]
    if _TPER not in codes:
        raise UnrecognisedOutput("the Level 0 discovery has no TPer feature descriptor: not a TCG answer")
    for code in (_TPER, _LOCKING, *_FEATURE_CODES):
        if codes.count(code) > 1:
            raise UnrecognisedOutput(f"feature 0x{code:04x} appears twice in the Level 0 discovery")
    families = tuple(_FEATURE_CODES[c] for c in codes if c in _FEATURE_CODES)
    return TcgStatus(
        families=families,
        source="level0",
        features=tuple(codes),
        missing_bytes=max(0, total - len(data)),
        **_locking_bits(features),
    )


def describe_features(status: TcgStatus) -> str:
    """The feature codes of a raw discovery, for the notes: ``0x0001 0x0002 0x0203``."""
    return " ".join(f"0x{c:04x}" for c in status.features)


# -- hex dumps of the tools that read it -----------------------------------------------------------

# nvme-cli's d(): "0000: 00 00 00 b4 00 00 00 01 ... \"....\"" (the ASCII column in quotes).
_NVME_ROW = re.compile(r"^([0-9a-fA-F]{4,8}):((?: [0-9a-fA-F]{2}){1,16})(?: +\".*\")?\s*$")
# sg3_utils' hex2stderr: " 00     00 00 00 b4 00 00 00 01  00 00 ...    ................".
_SG_ROW = re.compile(r"^ ?([0-9a-fA-F]{2,8})  +((?:[0-9a-fA-F]{2} {1,2}){0,15}[0-9a-fA-F]{2})(?:   .*)?$")


def _rows_bytes(rows: list[tuple[int, str]], tool: str) -> bytes:
    """The bytes of consecutive hex-dump rows (offset, hex text); a gap or a jump is refused."""
    out = bytearray()
    for offset, text in rows:
        if offset != len(out):
            raise UnrecognisedOutput(f"{tool}'s hex dump jumps to offset 0x{offset:x} after {len(out)} bytes")
        out += bytes.fromhex(text)
    if not out:
        raise UnrecognisedOutput(f"{tool} printed no hex dump of the Level 0 discovery")
    return bytes(out)


def nvme_hexdump_bytes(text: str) -> bytes:
    """The buffer ``nvme security-recv`` printed (nvme-cli 1.x and 2.x, with or without its
    "Command Success" line); :class:`UnrecognisedOutput` when it printed no hex dump."""
    rows = [(int(m.group(1), 16), m.group(2)) for m in map(_NVME_ROW.match, text.splitlines()) if m]
    return _rows_bytes(rows, "nvme security-recv")


def sg_raw_hexdump_bytes(text: str) -> bytes:
    """The buffer ``sg_raw -r N`` printed on stderr after "Received N bytes of data:" (sg3_utils
    1.4x); :class:`UnrecognisedOutput` when it received nothing or printed no hex dump."""
    _, found, after = text.partition("bytes of data:")
    if not found:
        raise UnrecognisedOutput("sg_raw received no data (no 'Received N bytes of data' line)")
    rows = []
    for line in after.splitlines():
        m = _SG_ROW.match(line)
        if m:
            rows.append((int(m.group(1), 16), m.group(2)))
        elif line.strip():
            break
    return _rows_bytes(rows, "sg_raw")


# -- the PSID revert through the Linux kernel (erase.purge.sedopal), its result line ---------------

#: The PSID printed on a TCG drive's label is 32 characters (TCG Opal SSC, PSID authority).
PSID_MAX = 32
#: TCG method status codes (TCG Storage Architecture Core Spec, 5.1.5), named as the kernel's
#: block/sed-opal.c names them; 0x3F is the spec's generic FAIL.
TCG_STATUS = {
    0x00: "SUCCESS",
    0x01: "NOT_AUTHORIZED",
    0x02: "UNKNOWN_ERROR",
    0x03: "SP_BUSY",
    0x04: "SP_FAILED",
    0x05: "SP_DISABLED",
    0x06: "SP_FROZEN",
    0x07: "NO_SESSIONS_AVAILABLE",
    0x08: "UNIQUENESS_CONFLICT",
    0x09: "INSUFFICIENT_SPACE",
    0x0A: "INSUFFICIENT_ROWS",
    0x0B: "INVALID_FUNCTION",
    0x0C: "INVALID_PARAMETER",
    0x0D: "INVALID_REFERENCE",
    0x0E: "UNKNOWN_ERROR",
    0x0F: "TPER_MALFUNCTION",
    0x10: "TRANSACTION_FAILURE",
    0x11: "RESPONSE_OVERFLOW",
    0x12: "AUTHORITY_LOCKED_OUT",
    0x3F: "FAIL",
}
#: TCG statuses that mean the PSID was refused: wrong, or too many wrong ones (power-cycle first).
WRONG_PSID = frozenset({0x01, 0x12})
#: Errors the kernel gives when it has no Opal device behind the block device: ENOTTY (the driver
#: has no Opal ioctls: virtio, md, a kernel without CONFIG_BLK_SED_OPAL), EOPNOTSUPP (no opal_dev,
#: or a Level 0 discovery without an Opal 1/2 SSC), 524 (ENOTSUPP, what kernels before 5.x returned
#: for the same), and EINVAL (what the loop driver answers to any ioctl it does not know, measured on
#: Linux 6.18; the key Tabula sends is checked first, so EINVAL never means a bad PSID here).
NO_OPAL_ERRNOS = {25: "ENOTTY", 95: "EOPNOTSUPP", 524: "ENOTSUPP", 22: "EINVAL"}
#: The exit code of ``tabula-opal psid-revert`` for each result.
EXIT_CODES = {"ok": 0, "error": 1, "refused": 2, "wrong-psid": 3, "no-opal": 4}
_LINE = re.compile(r"^psid-revert result=(ok|error|refused|wrong-psid|no-opal) status=(\S+)$", re.MULTILINE)


def psid_problem(psid: str) -> str | None:
    """Why ``psid`` cannot be the PSID of a drive's label (None: it can be sent)."""
    if not psid:
        return "the PSID is empty"
    if len(psid) > PSID_MAX:
        return f"the PSID is {len(psid)} characters long; a drive label's PSID has at most {PSID_MAX}"
    if not (psid.isascii() and psid.isprintable()) or any(c.isspace() for c in psid):
        return "the PSID holds characters no drive label has (spaces, accents, control characters)"
    return None


@dataclass(frozen=True)
class RevertResult:
    """What ``tabula-opal psid-revert`` reports: a result and its status.

    ``status`` is ``ok``, ``tcg:0xNN:NAME`` (the drive's TCG method status), ``errno:N:NAME`` (the
    kernel's error) or ``input:WHY`` (refused before anything was sent).
    """

    result: str
    status: str

    def __post_init__(self) -> None:
        if self.result not in EXIT_CODES or not self.status or any(c.isspace() for c in self.status):
            raise ValueError(f"not a PSID revert result: {self.result!r} {self.status!r}")

    @property
    def line(self) -> str:
        return f"psid-revert result={self.result} status={self.status}"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    @property
    def explanation(self) -> str:
        """For a person (English; the station's layers translate)."""
        return _EXPLAIN[self.result].format(status=self.status.replace(":", " ", 1))


_EXPLAIN = {
    "ok": "the drive accepted the PSID revert (TCG SUCCESS)",
    "wrong-psid": (
        "the drive refused the PSID ({status}): check it against the label (32 characters, case "
        "matters) and type it again; after several wrong ones the drive refuses every attempt until "
        "it is powered off and on"
    ),
    "no-opal": (
        "the Linux kernel cannot send Opal commands to this device ({status}): a USB bridge that does "
        "not pass them, a drive the kernel's Opal code does not handle (Pyrite, Opalite) or a kernel "
        "without CONFIG_BLK_SED_OPAL; revert it with sedutil-cli or the vendor's tool"
    ),
    "error": "the PSID revert failed ({status})",
    "refused": "the PSID revert was not sent ({status})",
}


def tcg_result(ret: int) -> RevertResult:
    """The ioctl's non-negative return: 0, or the drive's TCG method status."""
    name = TCG_STATUS.get(ret, "UNKNOWN")
    if ret == 0:
        return RevertResult("ok", "ok")
    return RevertResult("wrong-psid" if ret in WRONG_PSID else "error", f"tcg:0x{ret:02x}:{name}")


def errno_result(number: int, name: str) -> RevertResult:
    """The ioctl's error (errno ``number``, named ``name``)."""
    if number in NO_OPAL_ERRNOS:
        return RevertResult("no-opal", f"errno:{number}:{NO_OPAL_ERRNOS[number]}")
    return RevertResult("error", f"errno:{number}:{name or 'UNKNOWN'}")


def parse_revert_line(text: str) -> RevertResult | None:
    """The result line ``tabula-opal psid-revert`` printed; None when it printed none."""
    found = _LINE.findall(text)
    if len(found) != 1:
        return None
    return RevertResult(found[0][0], found[0][1])
