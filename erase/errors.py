"""Errors of the erase package.  Each explains itself to a person (see host.errors)."""

from __future__ import annotations

from host.errors import TabulaError


class EraseError(TabulaError):
    """Base of every erase error."""


class InvalidModel(EraseError):
    """A record or plan could not be built because it would state something false or incomplete."""


class UnknownMethod(EraseError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown erase method '{name}'", hint="choose one of: " + ", ".join(sorted(known)))


class DeviceError(EraseError):
    """The device could not be opened or used."""


class DriveGone(DeviceError):
    """The drive disappeared (pulled cable, reset) while it was being erased."""

    hint = "check the cable or bay, then erase the drive again from the start"


class JournalError(EraseError):
    """A job journal is missing, unreadable or inconsistent."""
