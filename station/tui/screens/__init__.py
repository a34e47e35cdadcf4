"""The screens of the station, one module each, and the parts they share.

``drives`` (the main screen) leads to ``policy`` -> ``plan`` or ``purge_plan`` (confirmation) ->
``bench`` (progress and results), and to ``details``, ``diagnostics`` and ``settings``; ``confirm``
is the yes/no dialog.  ``base`` and ``widgets`` hold what they share.  Screens read the station
through :class:`station.tui.context.StationContext` and post messages
(:mod:`station.tui.messages`) to change it: no screen imports the app.
"""

from station.tui.screens.base import TabulaScreen
from station.tui.screens.bench import BenchScreen
from station.tui.screens.confirm import ConfirmScreen
from station.tui.screens.details import DetailsScreen, certificate_check
from station.tui.screens.diagnostics import DiagnosticsScreen
from station.tui.screens.drives import DrivesScreen
from station.tui.screens.plan import PlanScreen
from station.tui.screens.policy import PolicyScreen
from station.tui.screens.purge_plan import PurgePlanScreen
from station.tui.screens.settings import SettingsScreen

__all__ = [
    "BenchScreen",
    "ConfirmScreen",
    "DetailsScreen",
    "DiagnosticsScreen",
    "DrivesScreen",
    "PlanScreen",
    "PolicyScreen",
    "PurgePlanScreen",
    "SettingsScreen",
    "TabulaScreen",
    "certificate_check",
]
