"""Errors of the purge package."""

from __future__ import annotations

from erase.errors import EraseError


class PurgeError(EraseError):
    """Base of the purge errors."""


class ProbeError(PurgeError):
    """The drive's capabilities could not be read."""


class UnrecognisedOutput(ProbeError, ValueError):
    """A tool printed something this station cannot read (unknown version, layout or truncated output).

    What the drive supports is then *unknown*: a parser raises this rather than guess a capability
    from a format it does not know.  It is a ValueError too, as a malformed document is.
    """

    hint = (
        "the capability is unknown, not absent: record the tool's output and its version for the developers"
    )


class UnknownPolicy(PurgeError):
    hint = "use nist-clear, nist-purge, or an overwrite method (see 'station methods')"


class StepFailed(PurgeError):
    """A firmware step did not do what it must, by the drive's status or by the data read back."""

    hint = "the drive was not sanitized by this step: see the job record for the evidence"


class ReplayError(PurgeError):
    """A replayed (recorded) machine cannot do what was asked."""
