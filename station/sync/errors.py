"""Errors of the traceability sync (outbox and upload client)."""

from __future__ import annotations

from station.errors import StationError


class SyncError(StationError):
    """Base of the sync errors."""


class OutboxError(SyncError):
    """The durable outbox could not be read or written."""

    hint = "check that $TABULA_HOME is on a writable disk (the persistence partition on the live image)"


class OutboxConflict(OutboxError):
    """A different document is already queued under the same id (never silently replaced)."""

    hint = "a certificate id is unique: find out why two different files carry the same id"


class SyncConfigError(SyncError):
    """The sync settings are missing or invalid (URL, token file, CA bundle)."""

    hint = "set url and token_file in $TABULA_HOME/sync.toml, or pass --url and --token-file"


class UnknownDocument(SyncError):
    """``station sync --requeue ID`` names a document the outbox does not hold."""

    hint = "station sync --status lists the refused and retrying documents with their ids"
