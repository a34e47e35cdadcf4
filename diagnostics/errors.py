"""Errors of the diagnostics package.  Each explains itself to a person (see host.errors).

A drive that cannot report SMART is *not* an error: it is a result whose status is "unknown".
These exceptions are for things the caller asked for that could not be done (a bad rule file,
a self-test that the drive did not start, a test asked with impossible bounds).
"""

from __future__ import annotations

from host.errors import TabulaError


class DiagnosticsError(TabulaError):
    """Base of every diagnostics error."""


class RulesError(DiagnosticsError):
    """The grading rule file is missing, not TOML, or says something that cannot be applied."""

    hint = "fix the rule file (see diagnostics/rules.toml for the documented defaults)"


class SelfTestError(DiagnosticsError):
    """A SMART self-test could not be started, confirmed, followed or aborted."""


class SelfTestNotStarted(SelfTestError):
    """smartctl was asked to start a self-test, but the drive's self-test log shows none running or new."""

    hint = "the drive (or its USB bridge) may not support self-tests; rely on the SMART attributes instead"


class BoundsError(DiagnosticsError):
    """A quick hardware test was asked with bounds it cannot honour (too much memory, no time)."""


class BadDevice(DiagnosticsError):
    """A device named on the command line is not one the diagnostics can read (missing, not a disk)."""
