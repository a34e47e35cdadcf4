"""Errors of the purge package."""

from __future__ import annotations

from erase.errors import EraseError


class PurgeError(EraseError):
    """Base of the purge errors."""


class ProbeError(PurgeError):
    """The drive's capabilities could not be read."""


class UnknownPolicy(PurgeError):
    hint = "use nist-clear, nist-purge, or an overwrite method (see 'station methods')"


class StepFailed(PurgeError):
    """A firmware step did not do what it must, by the drive's status or by the data read back."""

    hint = "the drive was not sanitized by this step: see the job record for the evidence"


class ReplayError(PurgeError):
    """A replayed (recorded) machine cannot do what was asked."""
