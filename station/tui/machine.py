"""The machine at the bench: its donation lot and asset number, as the TUI asks and shows them.

Pure (no Textual): the machine screen (:mod:`station.tui.screens.machine`) reads what the technician
typed or scanned through :func:`read_machine`, the app keeps the result in ``machine`` and gives it to
every job it plans afterwards (:meth:`Machine.operator`: the plan's operator fields, which the
certificate, the failure report and the destruction record sign) and to the diagnostics report.
The rules are the shared ones (:mod:`host.refs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from host import refs
from station.i18n import _, tr


@dataclass(frozen=True)
class Machine:
    lot: str = ""  # '' when the workshop gave none
    asset_number: str = ""

    def __post_init__(self) -> None:
        if self.lot:
            refs.check_lot(self.lot)
        refs.check_asset(self.asset_number)

    def operator(self) -> dict[str, str]:
        """The job plan's operator fields for this machine (only those given)."""
        out = {"lot": self.lot, "asset_number": self.asset_number}
        return {k: v for k, v in out.items() if v}

    def label(self) -> str:
        """'lot LOT-2026-03 · asset PC-7' ('' when neither is known)."""
        parts = []
        if self.lot:
            parts.append(_("lot {lot}").format(lot=self.lot))
        if self.asset_number:
            parts.append(_("asset {asset}").format(asset=self.asset_number))
        return " · ".join(parts)


@dataclass(frozen=True)
class Refused:
    """Why what was typed cannot be kept: the field to fix (``lot`` / ``asset``) and what to say."""

    field: str
    message: str


def lot_refused(typed: str) -> Refused | None:
    """Why the lot field's text is not a lot reference (None when it is one, or empty)."""
    lot = refs.clean(typed)
    problem = refs.lot_problem(lot) if lot else None
    if problem is None:
        return None
    return Refused("lot", _("Lot reference: {why}. For example LOT-2026-03.").format(why=tr(problem)))


def read_machine(lot: str, asset: str) -> Machine | Refused:
    """The machine from the two fields (blanks around them dropped: a scanner may add some)."""
    refused = lot_refused(lot)
    if refused is not None:
        return refused
    asset_number = refs.clean(asset)
    problem = refs.asset_problem(asset_number)
    if problem is not None:
        return Refused("asset", _("Asset number: {why}.").format(why=tr(problem)))
    return Machine(refs.clean(lot), asset_number)
