"""The workshop's references for a donated machine: its donation lot and its asset number.

One rule for both, at the bottom of the layers, because every part of Tabula checks them: the station
when the technician types or scans them (TUI, ``--lot`` / ``--asset``), the certificate, the
destruction record and the diagnostics report when they are built (each validates on construction),
and the hub.

* A **lot reference** names a donation lot: 1 to 64 characters among ``A-Z a-z 0-9 . _ / -``, case
  preserved (``LOT-2026-03``, ``mairie/2026.03``).  No space: a barcode scanner's burst ends at Enter,
  and a reference read aloud or printed on a label must be the same string.
* An **asset number** is the property number of the machine, as the certificate always held it: up to
  :data:`ASSET_NUMBER_MAX` characters, no NUL ('' when not given).  The rule cannot grow stricter:
  certificates signed under it must keep verifying.

Both are stripped of surrounding blanks where people type them (:func:`clean`), never inside a model.
"""

from __future__ import annotations

import re

from host.errors import BadInput

LOT_MAX = 64  # the messages below say 64 and 200 in words (certs/phrases.py translates them)
ASSET_NUMBER_MAX = 200
_LOT = re.compile(r"[A-Za-z0-9._/-]{1,64}")


class BadReference(BadInput):
    """A lot reference or an asset number that Tabula cannot record as given."""


def lot_problem(value: str) -> str | None:
    """Why ``value`` is not a lot reference (None when it is one)."""
    if not value:
        return "the lot reference is empty"
    if len(value) > LOT_MAX:
        return f"the lot reference is {len(value)} characters long; at most 64"
    if not _LOT.fullmatch(value):
        bad = sorted({c for c in value if not _LOT.fullmatch(c)})
        shown = " ".join(repr(c) for c in bad[:5])
        return f"the lot reference may hold only letters, digits and . _ / - (not {shown})"
    return None


def check_lot(value: str) -> str:
    """``value`` when it is a lot reference; :class:`BadReference` otherwise."""
    problem = lot_problem(value)
    if problem is not None:
        raise BadReference(problem, hint="e.g. LOT-2026-03: letters, digits and . _ / -, at most 64")
    return value


def asset_problem(value: str) -> str | None:
    """Why ``value`` is not an asset number (None when it is one; '' is 'not given')."""
    if len(value) > ASSET_NUMBER_MAX:
        return f"the asset number is {len(value)} characters long; at most 200"
    if "\x00" in value:
        return "the asset number contains a NUL character"
    return None


def check_asset(value: str) -> str:
    """``value`` when it is an asset number ('' included); :class:`BadReference` otherwise."""
    problem = asset_problem(value)
    if problem is not None:
        raise BadReference(problem, hint="the asset number printed on the machine, at most 200")
    return value


def clean(value: str | None) -> str:
    """What a person typed or scanned, without the blanks around it (a scanner may add a tab)."""
    return (value or "").strip()
