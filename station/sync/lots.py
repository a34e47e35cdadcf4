"""Is this lot known to the hub, and still open?  Asked when the technician gives a lot reference.

The hub answers ``GET /api/v1/lots?reference=REF`` (station token) with the lot (``closed_at`` null
while it is open) or 404 ``unknown_lot``.  What it says is a **warning**, never a refusal: a lot typed
at the bench before the office created it on the hub is common, and erasing never waits for the
network.  So:

* ``open``: nothing to say;
* ``closed`` / ``unknown``: the station warns (the TUI, ``station erase``), and the records are
  signed and queued as usual; the hub links them to the lot once it exists;
* ``pending``: no hub configured answer (unreachable, timeout, an older hub without lots): the check
  is recorded in the outbox (``lot_checks``) and asked again by every sync pass until the hub answers
  (:func:`recheck_pending`); the documents are queued as usual, nothing is lost.

Every check is recorded in the outbox, so ``station sync --status`` lists the lots that are unknown,
closed or still waiting.  The network goes through :class:`station.sync.client.SyncClient` (the only
module that speaks HTTP); a check waits at most :data:`CHECK_DEADLINE` seconds.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from host.errors import TabulaError
from station.sync.answer import WRONG_URL_HINT, Answer
from station.sync.config import SyncConfig, load_config
from station.sync.outbox import Outbox

if TYPE_CHECKING:
    from station.sync.client import SyncClient

LotState = Literal["open", "closed", "unknown", "pending"]
CHECK_DEADLINE = 5.0  # seconds: a technician waits this long at most before a check becomes pending
UNKNOWN_CODES = frozenset({"unknown_lot", "not_found"})


@dataclass(frozen=True)
class LotCheck:
    reference: str
    state: LotState
    detail: str = (
        ""  # open: the donor; closed: when (ISO 8601); unknown, pending: the hub's or network's words
    )
    checked_at: float = 0.0

    @property
    def warns(self) -> bool:
        """Whether a person should be told (the lot is unknown, closed, or could not be checked)."""
        return self.state != "open"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def interpret(reference: str, answer: Answer, now: float) -> LotCheck:
    """What the hub's answer to a lot lookup means (pure)."""
    if answer.verdict == "sent" and isinstance(answer.body, dict):
        inner = answer.body.get("lot")
        lot: dict[str, Any] = inner if isinstance(inner, dict) else answer.body
        closed_at = lot.get("closed_at")
        donor = str(lot.get("donor_name") or "")
        if closed_at or lot.get("state") == "closed":
            return LotCheck(reference, "closed", str(closed_at or ""), now)  # detail: when it was closed
        return LotCheck(reference, "open", donor, now)
    if answer.status == 404 and answer.code in UNKNOWN_CODES:
        return LotCheck(reference, "unknown", answer.message.removesuffix(WRONG_URL_HINT), now)
    if answer.status == 404:  # a plain 404: a hub from before lots (or a wrong URL) cannot say yet
        return LotCheck(reference, "pending", "the hub does not answer lot lookups: " + answer.message, now)
    return LotCheck(reference, "pending", answer.message, now)


def ask(client: SyncClient, reference: str) -> LotCheck:
    return interpret(reference, client.lot(reference), time.time())


def check_lot(reference: str, home: Path | None = None, config: SyncConfig | None = None) -> LotCheck | None:
    """Ask the hub about ``reference`` and record the answer; None when no hub is configured.

    Never raises for the network: an unreachable hub (or unusable sync settings) makes the check
    ``pending``, recorded, and asked again by the next sync pass.
    """
    try:
        config = config if config is not None else load_config(home)
    except TabulaError as e:
        return _record(home, LotCheck(reference, "pending", e.message, time.time()))
    if not config.configured:
        return None
    config = dataclasses.replace(
        config, deadline=min(config.deadline, CHECK_DEADLINE), timeout=min(config.timeout, CHECK_DEADLINE)
    )
    # Start-up time: the HTTP stack (httpx) is imported when a lot is checked, not with the TUI.
    from station.sync.client import SyncClient

    try:
        with SyncClient(config) as client:
            check = ask(client, reference)
    except TabulaError as e:  # the token file cannot be read, http:// refused...
        check = LotCheck(reference, "pending", e.message, time.time())
    return _record(home, check)


def _record(home: Path | None, check: LotCheck) -> LotCheck:
    with Outbox(home) as box:
        box.record_lot(check.reference, check.state, check.detail, check.checked_at)
    return check


def recorded(home: Path | None = None) -> list[LotCheck]:
    """Every lot check the outbox holds, newest first."""
    with Outbox(home) as box:
        rows = box.lot_checks()
    return [LotCheck(ref, state, detail, at) for ref, state, detail, at in rows]  # type: ignore[arg-type]


def recheck_pending(box: Outbox, client: SyncClient) -> int:
    """Ask the hub again about every lot whose check is pending (a sync pass); how many it answered."""
    answered = 0
    for ref, state, _detail, _at in box.lot_checks():
        if state != "pending":
            continue
        check = ask(client, ref)
        box.record_lot(check.reference, check.state, check.detail, check.checked_at)
        if check.state == "pending":
            break  # the hub still cannot say: the next pass asks again
        answered += 1
    return answered
