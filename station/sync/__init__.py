"""Traceability sync: a durable outbox of signed certificates and reports, drained to the hub.

* :func:`enqueue_certificate` / :func:`enqueue_report`: queue a document the moment it is written
  (local, durable, never waits for the network);
* :func:`drain`: upload now; :class:`SyncDaemon` / :func:`start_background`: keep uploading;
* :func:`status`: pending / sent / rejected counts, last error and last success (TUI, CLI).
"""

from station.sync.client import SyncDaemon, SyncStatus, drain, start_background, status
from station.sync.outbox import enqueue_certificate, enqueue_report

__all__ = [
    "SyncDaemon",
    "SyncStatus",
    "drain",
    "enqueue_certificate",
    "enqueue_report",
    "start_background",
    "status",
]
