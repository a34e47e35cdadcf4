"""TCG storage (Opal, Pyrite, Enterprise) from Level 0 discovery, as sedutil-cli prints it.  Pure.

* ``sedutil-cli --query DEV`` prints the drive's Level 0 discovery: one ``<Name> function (0xCODE)``
  header per feature descriptor (``OPAL 2.0 function (0x0203)``, ``Pyrite ...``, ``Enterprise ...``)
  and, under ``Locking function (0x0002)``, ``Locked = Y/N, LockingEnabled = Y/N, ... MediaEncrypt = Y/N``;
* ``sedutil-cli --scan`` prints one line per drive: the device, the SSC column (``No``, or letters:
  ``1`` Opal 1, ``2`` Opal 2, ``E`` Enterprise, ``L`` Opalite, ``p`` Pyrite 1, ``P`` Pyrite 2, ``r``
  Ruby), the model and firmware.

A PSID revert (TCG Opal/Pyrite ``Revert`` with the PSID authority) is what this station offers on
such a drive: it is only planned when one of these says Opal, Opalite or Pyrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
    source: str  # "query" or "scan"
    locked: bool | None = None
    locking_enabled: bool | None = None
    media_encrypt: bool | None = None

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
