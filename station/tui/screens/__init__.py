"""The screens of the station, one module each, and the parts they share.

``drives`` (the main screen) leads to ``policy`` -> ``plan`` or ``purge_plan`` (confirmation) ->
``bench`` (progress and results) -> ``result`` (a finished drive: its certificate and QR code, print,
label; or its failure report and what next: erase again, another method, ``destroy``), and to
``details``, ``diagnostics``, ``machine`` (lot and asset number) and ``settings``; ``confirm`` is the yes/no dialog.  ``base`` and ``widgets`` hold what they share.  Screens read the station
through :class:`station.tui.context.StationContext` and post messages
(:mod:`station.tui.messages`) to change it: no screen imports the app.
"""

from station.tui.screens.base import TabulaScreen
from station.tui.screens.bench import BenchScreen
from station.tui.screens.confirm import ConfirmScreen
from station.tui.screens.destroy import DestroyScreen
from station.tui.screens.details import DetailsScreen, certificate_check
from station.tui.screens.diagnostics import DiagnosticsScreen
from station.tui.screens.drives import DrivesScreen
from station.tui.screens.machine import MachineScreen
from station.tui.screens.plan import PlanScreen
from station.tui.screens.policy import PolicyScreen
from station.tui.screens.purge_plan import PurgePlanScreen
from station.tui.screens.result import ResultScreen
from station.tui.screens.settings import SettingsScreen

__all__ = [
    "BenchScreen",
    "ConfirmScreen",
    "DestroyScreen",
    "DetailsScreen",
    "DiagnosticsScreen",
    "DrivesScreen",
    "MachineScreen",
    "PlanScreen",
    "PolicyScreen",
    "PurgePlanScreen",
    "ResultScreen",
    "SettingsScreen",
    "TabulaScreen",
    "certificate_check",
]
