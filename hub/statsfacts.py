"""Network statistics, pure logic: from rows the database gives to the figures ``/stats`` shows.

* devices per month of intake and workshop (the organisation that received them);
* outcome shares (each device's newest outcome; "none" while it has none);
* NIST levels reached by the signed records (clear, purge, destroy; none for failure reports);
* erasure failure rate by drive model (certificates and failure reports);
* median days from intake to outcome;
* the impact of reuse (waste and CO2e avoided, reused devices only) per lot, organisation and network.

Every figure is also a row of the CSV (``metric,workshop,month,key,value``).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.lotfacts import OUTCOMES, sort_time


@dataclass(frozen=True)
class DeviceRow:
    device_id: int
    organisation: str
    lot: str
    kind: str
    received_at: str | None  # first "received" event
    outcome: str | None  # newest outcome
    outcome_at: str | None


@dataclass(frozen=True)
class RecordRow:
    """A count of signed records with the same kind, success, level, drive model and workshop."""

    organisation: str
    kind: str
    success: bool
    level: str
    model: str | None
    count: int


@dataclass(frozen=True)
class ModelRate:
    model: str
    attempts: int
    failures: int

    @property
    def rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


@dataclass(frozen=True)
class Stats:
    scope: str  # an organisation's name, or "network"
    per_month: dict[tuple[str, str], int]  # (month, workshop) -> devices received
    outcomes: dict[str, int]
    levels: dict[str, int]
    failure_rates: tuple[ModelRate, ...]
    median_days: float | None
    median_days_by_workshop: dict[str, float]
    reused: dict[str, dict[str, dict[str, int]]]  # "lot"|"organisation"|"network" -> name -> kind -> n
    impact: dict[str, dict[str, Any]]  # the same keys -> name -> Impact JSON (filled by the caller)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "devices_per_month": [
                {"month": m, "workshop": w, "devices": n} for (m, w), n in sorted(self.per_month.items())
            ],
            "outcomes": self.outcomes,
            "nist_levels": self.levels,
            "erasure_failure_rate_by_model": [
                {"model": r.model, "attempts": r.attempts, "failures": r.failures, "rate": round(r.rate, 4)}
                for r in self.failure_rates
            ],
            "median_days_intake_to_outcome": self.median_days,
            "median_days_by_workshop": self.median_days_by_workshop,
            "impact": self.impact,
        }


def _month(ts: str | None) -> str | None:
    return ts[:7] if ts and len(ts) >= 7 else None


def _days(d: DeviceRow) -> float | None:
    if d.received_at is None or d.outcome_at is None:
        return None
    return (sort_time(d.outcome_at) - sort_time(d.received_at)).total_seconds() / 86400


def _median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 1) if kept else None


def _failure_rates(records: Sequence[RecordRow], limit: int) -> tuple[ModelRate, ...]:
    attempts: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for r in records:
        if r.kind in ("certificate", "failure_report"):
            attempts[r.model or "?"] += r.count
            if not r.success:
                failures[r.model or "?"] += r.count
    rates = [ModelRate(m, n, failures[m]) for m, n in attempts.items()]
    rates.sort(key=lambda r: (-r.rate, -r.attempts, r.model))
    return tuple(rates[:limit])


def _reused(devices: Sequence[DeviceRow]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {"lot": {}, "organisation": {}, "network": {}}
    for d in devices:
        if d.outcome != "reused":
            continue
        for scope, name in (
            ("lot", f"{d.organisation} / {d.lot}"),
            ("organisation", d.organisation),
            ("network", "network"),
        ):
            kinds = out[scope].setdefault(name, {})
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
    return out


def compute(
    scope: str,
    devices: Sequence[DeviceRow],
    records: Sequence[RecordRow],
    impact: Callable[[Mapping[str, int]], dict[str, Any]],
    *,
    models: int = 30,
) -> Stats:
    per_month: Counter[tuple[str, str]] = Counter()
    for d in devices:
        month = _month(d.received_at)
        if month is not None:
            per_month[(month, d.organisation)] += 1
    outcomes = Counter(d.outcome or "none" for d in devices)
    levels: Counter[str] = Counter()
    for r in records:
        levels[r.level] += r.count
    by_workshop: dict[str, list[float | None]] = defaultdict(list)
    for d in devices:
        by_workshop[d.organisation].append(_days(d))
    reused = _reused(devices)
    return Stats(
        scope=scope,
        per_month=dict(per_month),
        outcomes={o: outcomes.get(o, 0) for o in (*OUTCOMES, "none")},
        levels=dict(sorted(levels.items())),
        failure_rates=_failure_rates(records, models),
        median_days=_median(_days(d) for d in devices),
        median_days_by_workshop={
            w: m for w, v in sorted(by_workshop.items()) if (m := _median(v)) is not None
        },
        reused=reused,
        impact={s: {name: impact(kinds) for name, kinds in names.items()} for s, names in reused.items()},
    )


class _Safe:
    """A csv writer whose text cells cannot start a spreadsheet formula (= + - @ tab CR)."""

    def __init__(self, out: io.StringIO) -> None:
        self._w = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Sequence[object]) -> None:
        cells = [
            f"'{c}" if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r") else c for c in row
        ]
        self._w.writerow(cells)


def to_csv(stats: Stats) -> str:
    out = io.StringIO()
    w = _Safe(out)
    w.writerow(["metric", "workshop", "month", "key", "value"])
    for (month, workshop), n in sorted(stats.per_month.items()):
        w.writerow(["devices_per_month", workshop, month, "", n])
    for k, n in stats.outcomes.items():
        w.writerow(["outcome", "", "", k, n])
    for k, n in stats.levels.items():
        w.writerow(["nist_level", "", "", k, n])
    for r in stats.failure_rates:
        w.writerow(["erasure_failure_rate", "", "", r.model, f"{r.rate:.4f}"])
    w.writerow(
        ["median_days_intake_to_outcome", "", "", "", "" if stats.median_days is None else stats.median_days]
    )
    for workshop, m in stats.median_days_by_workshop.items():
        w.writerow(["median_days_intake_to_outcome", workshop, "", "", m])
    for scope, names in stats.impact.items():
        for name, imp in names.items():
            w.writerow([f"co2e_g_avoided_{scope}", name, "", "", imp.get("co2e_g", "")])
            w.writerow([f"waste_g_avoided_{scope}", name, "", "", imp.get("waste_g", "")])
    return out.getvalue()
