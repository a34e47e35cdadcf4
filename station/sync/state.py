"""What the outbox says, without the network: ``station sync --status`` and the TUI's sync line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from station.sync.config import load_config
from station.sync.errors import SyncConfigError
from station.sync.outbox import Outbox, db_path

#: How many refused and retrying documents the status lists (the counts are always complete).
LISTED = 20


@dataclass
class SyncStatus:
    """The outbox's state.  ``last_error`` / ``next_attempt_at``: the hub as a whole (a halted pass);
    ``retrying_items``: documents waiting out their own backoff; ``rejected_items``: refused for good,
    with the hub's reason (``station sync --requeue`` sends them again)."""

    pending: int = 0
    sent: int = 0
    rejected: int = 0
    retrying: int = 0
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    next_attempt_at: float | None = None
    next_retry_at: float | None = None  # when the earliest pending document is due (0: now)
    url: str = ""
    rejected_items: list[dict[str, Any]] = field(default_factory=list)
    retrying_items: list[dict[str, Any]] = field(default_factory=list)
    without_proof: int = 0  # certificates the hub holds whose log proof is not kept yet
    log_error: str | None = None
    log_alarm: str | None = None  # the hub's log failed the consistency check: needs a person
    chain_head_sequence: int | None = None  # the number the last chain head published names
    chain_head_at: float | None = None
    lots: list[dict[str, Any]] = field(default_factory=list)  # lot checks to tell: unknown, closed, pending

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _configured_url(home: Path | None) -> str:
    try:
        return load_config(home).url
    except SyncConfigError as e:
        return f"(invalid sync settings: {e.message})"


def status(home: Path | None = None) -> SyncStatus:
    """The outbox's state, read-only and without network (cheap enough for a TUI timer)."""
    url = _configured_url(home)
    if not db_path(home).exists():
        return SyncStatus(url=url)
    with Outbox(home, create=False) as box:
        counts = box.counts()
        meta = box.meta()
        rejected = [t.to_json() for t in box.rejected(LISTED)]
        retrying = [t.to_json() for t in box.retrying(LISTED)]
        next_due = box.next_due_at()
        lots = [
            {"reference": ref, "state": state, "detail": detail, "checked_at": at}
            for ref, state, detail, at in box.lot_checks()
            if state != "open"
        ][:LISTED]

    def num(key: str) -> float | None:
        return float(meta[key]) if key in meta else None

    return SyncStatus(
        pending=counts["pending"],
        sent=counts["sent"],
        rejected=counts["rejected"],
        retrying=counts["retrying"],
        last_success_at=num("last_success_at"),
        last_attempt_at=num("last_attempt_at"),
        last_error=meta.get("last_error"),
        last_error_at=num("last_error_at"),
        consecutive_failures=int(meta.get("consecutive_failures", "0")),
        next_attempt_at=num("next_attempt_at"),
        next_retry_at=next_due,
        url=url,
        rejected_items=rejected,
        retrying_items=retrying,
        without_proof=counts["without_proof"],
        log_error=meta.get("log_error"),
        log_alarm=meta.get("log_alarm"),
        chain_head_sequence=int(meta["chain_head_sequence"]) if "chain_head_sequence" in meta else None,
        chain_head_at=num("chain_head_at"),
        lots=lots,
    )
