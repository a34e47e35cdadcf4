"""Donation lots, pure logic: the vocabulary, what a device's records say, and a lot's progress.

Nothing here touches the database or HTTP (:mod:`hub.lots` reads and writes, :mod:`hub.api_lots`
and :mod:`hub.pages_lots` answer).  A device's state is *computed* from what the hub holds:

* the events people and stations recorded (received, repaired, outcome);
* the diagnostics reports carrying its asset number (the newest gives the verdict, its reasons and
  the inventory: make, model, serial and the drives);
* the signed records carrying its asset number: erasure certificates, failure reports and
  destruction records.

A record or report whose ``lot`` names another lot than the device's is not counted for it: it is
listed as a problem.  A device is **data cleared** only when its inventory lists at least one drive
and every drive it lists, and every other drive its records name, has a verified erasure
certificate or a destruction record (matched by serial number); a drive with neither is flagged.  Without an inventory (no diagnostics report) a
device is not data cleared, except a device of kind ``drive``, which is its own inventory.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

DEVICE_KINDS = ("laptop", "desktop", "phone", "tablet", "server", "drive")
DONOR_KINDS = ("company", "public_body", "household")
OUTCOMES = ("reused", "sold", "recycled", "destroyed")
BENEFICIARIES = ("household", "student", "association", "job_seeker", "other")
VERDICTS = ("reuse", "repair", "recycle")
RECORDED_EVENTS = ("received", "repaired", "outcome")
ROLES = ("staff", "coordinator")

REFERENCE = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")
DONOR_NAME_MAX = 200
CONTACT_MAX = 200
DETAIL_MAX = 500
_TEXT_MAX = 512  # strings read from an (unsigned) diagnostics report
_DRIVES_MAX = 64


# --- reports -------------------------------------------------------------------------------------


def storable(value: str) -> str:
    """Text every database stores: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return storable(value.strip()[:_TEXT_MAX])


def _load(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def report_keys(body: bytes) -> tuple[str | None, str | None]:
    """The asset number and lot reference a diagnostics report carries (top-level ``asset_number``,
    or ``asset``, and ``lot``), or None."""
    doc = _load(body)
    if doc is None:
        return None, None
    asset = _text(doc.get("asset_number")) or _text(doc.get("asset"))
    return (asset[:200] if asset else None), _text(doc.get("lot"))


@dataclass(frozen=True)
class Drive:
    serial: str | None
    model: str | None


@dataclass(frozen=True)
class ReportFact:
    """What a diagnostics report says of the machine (strings capped: the report is not signed)."""

    report_id: str
    at: str  # ISO time (finished, else started, else received)
    lot: str | None
    verdict: str | None
    reasons: tuple[str, ...]
    manufacturer: str | None
    model: str | None
    serial: str | None
    drives: tuple[Drive, ...] | None  # None: no inventory in the report


def _verdict(doc: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    machine = doc.get("machine")
    if isinstance(machine, dict):
        reasons = machine.get("reasons")
        listed = tuple(t for r in reasons if (t := _text(r))) if isinstance(reasons, list) else ()
        verdict = machine.get("verdict")
        return (verdict if verdict in VERDICTS else None), listed[:50]
    overall = doc.get("overall")
    return (overall if overall in VERDICTS else None), ()


def _drives(inventory: Mapping[str, Any]) -> tuple[Drive, ...] | None:
    storage = inventory.get("storage")
    if not isinstance(storage, list):
        return None
    out = []
    for d in storage[:_DRIVES_MAX]:
        if isinstance(d, dict) and not d.get("boot_medium"):
            out.append(Drive(_text(d.get("serial")), _text(d.get("model"))))
    return tuple(out)


def report_fact(report_id: str, body: bytes, received_at: str) -> ReportFact | None:
    doc = _load(body)
    if doc is None:
        return None
    verdict, reasons = _verdict(doc)
    inventory = doc.get("inventory")
    system = inventory.get("system") if isinstance(inventory, dict) else None
    system = system if isinstance(system, dict) else {}
    return ReportFact(
        report_id=report_id,
        at=_text(doc.get("finished_at")) or _text(doc.get("started_at")) or received_at,
        lot=_text(doc.get("lot")),
        verdict=verdict,
        reasons=reasons,
        manufacturer=_text(system.get("manufacturer")),
        model=_text(system.get("model")),
        serial=_text(system.get("serial")),
        drives=_drives(inventory) if isinstance(inventory, dict) else None,
    )


# --- signed records and events ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecordFact:
    """A signed record the hub stores: an erasure certificate, a failure report or a destruction."""

    record_id: str
    kind: str  # certificate | failure_report | destruction
    success: bool
    level: str
    serial: str | None
    model: str | None
    manufacturer: str | None
    issued_at: str
    lot: str | None
    sha256: str
    result: str = ""  # the record's result.outcome (verified, failed, ...; destroyed)

    @property
    def proof(self) -> bool:
        """A verified erasure or a destruction: what clears a drive."""
        return (self.kind == "certificate" and self.success) or self.kind == "destruction"


@dataclass(frozen=True)
class EventFact:
    kind: str  # received | repaired | outcome
    at: str
    outcome: str | None
    detail: str
    actor: str


@dataclass(frozen=True)
class DeviceFacts:
    asset_number: str
    kind: str
    manufacturer: str | None
    model: str | None
    serial: str | None
    created_at: str


# --- a device's state ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriveState:
    serial: str | None
    model: str | None
    records: tuple[RecordFact, ...]  # every record of this drive, oldest first
    proof: RecordFact | None  # the newest verified certificate, else the newest destruction
    in_inventory: bool

    @property
    def flagged(self) -> bool:
        return self.proof is None

    def to_json(self) -> dict[str, Any]:
        p = self.proof
        return {
            "serial": self.serial,
            "model": self.model,
            "in_inventory": self.in_inventory,
            "cleared": p is not None,
            "proof": None
            if p is None
            else {"kind": p.kind, "id": p.record_id, "level": p.level, "date": p.issued_at},
            "records": [{"kind": r.kind, "id": r.record_id, "success": r.success} for r in self.records],
        }


@dataclass(frozen=True)
class DeviceState:
    facts: DeviceFacts
    lot: str
    verdict: str | None
    reasons: tuple[str, ...]
    diagnosed_at: str | None
    drives: tuple[DriveState, ...]
    data_cleared: bool
    cleared_problem: str | None  # why it is not data cleared
    outcome: EventFact | None
    received_at: str
    repaired: bool
    timeline: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]
    make: str | None = None
    model: str | None = None
    serial: str | None = None

    @property
    def missing_proof(self) -> tuple[DriveState, ...]:
        return tuple(d for d in self.drives if d.flagged)

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        return {
            "asset_number": self.facts.asset_number,
            "lot": self.lot,
            "kind": self.facts.kind,
            "manufacturer": self.make,
            "model": self.model,
            "serial": self.serial,
            "verdict": self.verdict,
            "verdict_reasons": list(self.reasons),
            "received_at": self.received_at,
            "diagnosed_at": self.diagnosed_at,
            "repaired": self.repaired,
            "data_cleared": self.data_cleared,
            "not_cleared_because": self.cleared_problem,
            "drives": [d.to_json() for d in self.drives],
            "outcome": None if o is None else {"kind": o.outcome, "detail": o.detail, "at": o.at},
            "timeline": list(self.timeline),
            "problems": list(self.problems),
        }


def _key(serial: str | None) -> str | None:
    return serial.strip().upper() if serial and serial.strip() else None


def _best(records: Sequence[RecordFact]) -> RecordFact | None:
    erased = [r for r in records if r.kind == "certificate" and r.success]
    destroyed = [r for r in records if r.kind == "destruction"]
    pool = erased or destroyed
    return max(pool, key=lambda r: r.issued_at) if pool else None


def drive_states(inventory: Sequence[Drive] | None, records: Sequence[RecordFact]) -> tuple[DriveState, ...]:
    """One state per inventory drive (matched to records by serial), then drives only records name.

    A drive without a serial number (a virtual or loop drive, some USB bridges) matches the records
    without one only when it is the only such drive of the inventory; otherwise it stays flagged and
    those records are listed as a drive of their own."""
    by_serial: dict[str | None, list[RecordFact]] = {}
    for r in sorted(records, key=lambda r: r.issued_at):
        by_serial.setdefault(_key(r.serial), []).append(r)
    out: list[DriveState] = []
    seen: set[str | None] = set()
    unnamed = sum(1 for d in inventory or () if _key(d.serial) is None)
    for d in inventory or ():
        k = _key(d.serial)
        matched = k is not None or unnamed == 1
        own = tuple(by_serial.get(k, ())) if matched else ()
        if matched:
            seen.add(k)
        out.append(DriveState(d.serial, d.model, own, _best(own), True))
    for k, listed in by_serial.items():
        if k not in seen:
            first = listed[-1]
            out.append(DriveState(first.serial, first.model, tuple(listed), _best(listed), False))
    return tuple(out)


def _cleared(kind: str, inventory: Sequence[Drive] | None, drives: Sequence[DriveState]) -> str | None:
    """Why the device is not data cleared (None: it is).  Every drive known for it counts: those of
    its inventory and those its records name (a drive taken out before the diagnosis too)."""
    if inventory is None and kind != "drive":
        return "no diagnostics inventory: which drives it held is unknown"
    if not drives:
        return "no drive in its inventory" if inventory is not None else "no erasure or destruction record"
    missing = [d for d in drives if d.proof is None]
    if missing:
        names = ", ".join(d.serial or "(no serial)" for d in missing)
        return f"{len(missing)} drive(s) without a verified certificate or destruction record: {names}"
    return None


def _timeline(
    events: Sequence[EventFact], reports: Sequence[ReportFact], records: Sequence[RecordFact]
) -> tuple[dict[str, Any], ...]:
    items: list[dict[str, Any]] = [
        {"at": e.at, "event": e.kind, "outcome": e.outcome, "detail": e.detail, "by": e.actor} for e in events
    ]
    items += [
        {"at": r.at, "event": "diagnosed", "verdict": r.verdict, "report_id": r.report_id} for r in reports
    ]
    for r in records:
        event = {"certificate": "drive_erased", "failure_report": "erasure_failed"}.get(
            r.kind, "drive_destroyed"
        )
        items.append(
            {"at": r.issued_at, "event": event, "id": r.record_id, "serial": r.serial, "level": r.level}
        )
    return tuple(sorted(items, key=lambda i: sort_time(i["at"])))


def sort_time(value: str) -> datetime:
    """An ISO date or time as an aware datetime (naive ones are UTC), for ordering."""
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _mine(lot: str, items: Iterable[Any], what: str, problems: list[str]) -> list[Any]:
    kept = []
    for item in items:
        if item.lot is not None and item.lot != lot:
            ident = getattr(item, "record_id", None) or getattr(item, "report_id", "?")
            problems.append(f"{what} {ident} names lot {item.lot!r}, not {lot!r}: not counted")
        else:
            kept.append(item)
    return kept


_NO_REPORT = ReportFact("", "", None, None, (), None, None, None, None)


def device_state(
    facts: DeviceFacts,
    lot: str,
    events: Sequence[EventFact],
    records: Sequence[RecordFact],
    reports: Sequence[ReportFact],
) -> DeviceState:
    problems: list[str] = []
    records = _mine(lot, records, "record", problems)
    reports = sorted(_mine(lot, reports, "report", problems), key=lambda r: sort_time(r.at))
    newest = reports[-1] if reports else _NO_REPORT
    drives = drive_states(newest.drives, records)
    why_not = _cleared(facts.kind, newest.drives, drives)
    outcomes = [e for e in events if e.kind == "outcome"]
    received = [e.at for e in events if e.kind == "received"]
    return DeviceState(
        facts=facts,
        lot=lot,
        verdict=newest.verdict,
        reasons=newest.reasons,
        diagnosed_at=newest.at or None,
        drives=drives,
        data_cleared=why_not is None,
        cleared_problem=why_not,
        outcome=max(outcomes, key=lambda e: sort_time(e.at)) if outcomes else None,
        received_at=min(received, key=sort_time) if received else facts.created_at,
        repaired=any(e.kind == "repaired" for e in events),
        timeline=_timeline(events, reports, records),
        problems=tuple(problems),
        make=facts.manufacturer or newest.manufacturer,
        model=facts.model or newest.model,
        serial=facts.serial or newest.serial,
    )


# --- a lot's progress ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotCounts:
    devices: int
    received: int
    diagnosed: int
    cleared: int
    repaired: int
    outcomes: dict[str, int]
    verdicts: dict[str, int]
    missing_proof: tuple[str, ...]  # asset numbers of devices with a drive that has no proof
    reused_by_kind: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "received": self.received,
            "diagnosed": self.diagnosed,
            "data_cleared": self.cleared,
            "repaired": self.repaired,
            "outcomes": dict(self.outcomes),
            "verdicts": dict(self.verdicts),
            "devices_missing_proof": list(self.missing_proof),
            "reused_by_kind": dict(self.reused_by_kind),
        }


def _outcome(s: DeviceState) -> str | None:
    return s.outcome.outcome if s.outcome is not None else None


def lot_counts(states: Sequence[DeviceState]) -> LotCounts:
    outcomes = Counter(_outcome(s) for s in states)
    reused = Counter(s.facts.kind for s in states if _outcome(s) == "reused")
    verdicts = Counter(s.verdict for s in states)
    return LotCounts(
        devices=len(states),
        received=len(states),
        diagnosed=sum(s.diagnosed_at is not None for s in states),
        cleared=sum(s.data_cleared for s in states),
        repaired=sum(s.repaired for s in states),
        outcomes={o: outcomes.get(o, 0) for o in OUTCOMES},
        verdicts={v: verdicts.get(v, 0) for v in VERDICTS},
        missing_proof=tuple(s.facts.asset_number for s in states if s.missing_proof),
        reused_by_kind=dict(sorted(reused.items())),
    )


# --- input checks ----------------------------------------------------------------------------------


class InputProblem(ValueError):
    """A field of a request is wrong: its name and why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def text_field(doc: Mapping[str, Any], name: str, limit: int, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InputProblem(name, "a non-empty string is required" if required else "must be a string")
    if len(value) > limit or storable(value) != value:
        raise InputProblem(name, f"at most {limit} characters of text (no NUL, valid UTF-8)")
    return value.strip()


def choice(doc: Mapping[str, Any], name: str, allowed: Sequence[str]) -> str:
    value = doc.get(name)
    if value not in allowed:
        raise InputProblem(name, f"one of {', '.join(allowed)}")
    return str(value)


def reference(value: Any, name: str = "reference") -> str:
    if not isinstance(value, str) or not REFERENCE.match(value):
        raise InputProblem(name, "1 to 64 characters among A-Z a-z 0-9 . _ / -")
    return value


def iso_date(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InputProblem(name, "an ISO date (2026-03-14)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise InputProblem(name, "an ISO date (2026-03-14)") from None


def iso_time(value: Any, name: str, now: datetime) -> datetime:
    """An ISO date or time (UTC when naive), not in the future; ``now`` when absent."""
    if value is None:
        return now
    if not isinstance(value, str) or len(value) > 40:
        raise InputProblem(name, "an ISO date or time (2026-03-14T10:00Z)")
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputProblem(name, "an ISO date or time (2026-03-14T10:00Z)") from None
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if ts > now:
        raise InputProblem(name, "cannot be in the future")
    return ts


def outcome_detail(outcome: str, detail: str | None) -> str:
    """The detail an outcome needs: a beneficiary category for ``reused`` (never a person), the WEEE
    channel's name for ``recycled``."""
    if outcome == "reused":
        if detail not in BENEFICIARIES:
            raise InputProblem(
                "detail", f"the beneficiary category ({', '.join(BENEFICIARIES)}), never a person's name"
            )
        return detail
    if outcome == "recycled" and not detail:
        raise InputProblem("detail", "the named WEEE channel the device was recycled through")
    return detail or ""
