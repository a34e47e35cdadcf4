"""Traceability sync: a durable outbox of signed certificates and reports, drained to the hub.

* :func:`enqueue_certificate` / :func:`enqueue_report`: queue a document the moment it is written
  (local, durable, never waits for the network);
* :func:`station.sync.drain.drain`: upload now; :class:`~station.sync.drain.SyncDaemon` /
  :func:`~station.sync.drain.start_background`: keep uploading (not imported with the package: the
  TUI's start-up does without the HTTP stack until a hub is used);
* :func:`status`: pending / sent / rejected / retrying counts, the hub's reasons, last error and last
  success (TUI, CLI).

Modules: :mod:`.outbox` (SQLite queue), :mod:`.client` (HTTP, the only one importing httpx),
:mod:`.drain` (passes, backoff, daemon), :mod:`.state` (status), :mod:`.config`, :mod:`.cli`,
:mod:`.lots` (is the technician's lot reference known to the hub, and open?).
"""

from station.sync.outbox import enqueue_certificate, enqueue_report
from station.sync.state import SyncStatus, status

__all__ = [
    "SyncStatus",
    "enqueue_certificate",
    "enqueue_report",
    "status",
]
