"""The impact of reuse on the hub's pages and statistics: :mod:`certs.impact` with the hub's table.

The factor table is ``certs/data/impact_factors.toml`` (ADEME's study of reconditioned products)
unless the hub is started with ``--impact-factors FILE`` (a network's own table, same format); it is
read once per process.  Only devices whose outcome is ``reused`` count.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from certs.impact import FactorTable, Impact, load_factors

_lock = threading.Lock()
_tables: dict[Path | None, FactorTable] = {}


class HasFactors(Protocol):
    impact_factors: Path | None


def factor_table(path: Path | None) -> FactorTable:
    with _lock:
        table = _tables.get(path)
        if table is None:
            table = _tables[path] = load_factors(path)
    return table


@dataclass(frozen=True)
class ImpactLine:
    """An impact as pages show it (kg, 3 decimals at most) with the table it comes from."""

    impact: Impact
    table: str
    citations: tuple[str, ...]

    @property
    def devices(self) -> int:
        return self.impact.devices

    @property
    def waste_kg(self) -> Decimal:
        return self.impact.waste_kg

    @property
    def co2e_kg(self) -> Decimal:
        return self.impact.co2e_kg

    def to_json(self) -> dict[str, Any]:
        return {**self.impact.to_json(), "table": self.table, "citations": list(self.citations)}


def impact_line(hub: HasFactors, reused_by_kind: Mapping[str, int]) -> ImpactLine:
    table = factor_table(hub.impact_factors)
    return ImpactLine(table.impact(reused_by_kind), table.name, tuple(table.citations()))
