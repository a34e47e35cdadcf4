"""Environmental impact of reuse: waste and CO2e avoided per device kind, from a documented table.

A **factor table** (TOML; the default is ``certs/data/impact_factors.toml``, built on ADEME's 2022
study of reconditioned digital products) gives, for each device kind, two figures: the electronic
waste and the greenhouse-gas emissions (kg CO2e) avoided when one device of that kind is reused
instead of a new one being made.  Each figure names its source, its year and how it was derived; a
figure no public source gives is a *placeholder* (value 0, ``placeholder = true``): it adds nothing
and reports name it.  A network replaces the whole table with its own file (same format; the hub is
given its path).  The format::

    name = "ADEME 2022, reconditioned digital products"
    [sources.ademe2022]
    citation = "ADEME, ... September 2022"
    url = "https://..."                 # optional
    [[factor]]
    kind = "laptop"                     # each of DEVICE_KINDS exactly once
    [factor.co2e]
    kg = "27"                           # exact decimal (string or integer), at most 3 decimals
    source = "ademe2022"                # a key of [sources]
    year = 2022
    method = "how the figure was derived"
    placeholder = false                 # optional; true: no sourced figure (kg must be "0")
    [factor.waste]
    ...

Only devices whose outcome is *reuse* count (the caller passes those counts).  Amounts are kept in
integer grams, so sums are exact and a signed lot report (canonical JSON: no floats) holds them.
Everything here is pure: :func:`load_factors` reads one file, nothing else touches the disk.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from certs.canonical import shown
from certs.errors import ImpactTableError, SchemaError

#: The device kinds every part of Tabula uses (issue 15's shared vocabulary).
DEVICE_KINDS = ("laptop", "desktop", "phone", "tablet", "server", "drive")
FIGURES = ("co2e", "waste")
#: Largest figure accepted for one device (kg): a typo of a few zeros is refused, not summed.
MAX_FIGURE_KG = 100_000
MAX_TEXT = 2000
_MAX_TABLE_BYTES = 1024 * 1024
_YEARS = range(1990, 2101)


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    url: str

    def cite(self) -> str:
        return f"{self.citation} ({self.url})" if self.url else self.citation


@dataclass(frozen=True)
class Figure:
    """One figure of the table: grams avoided per device, and where that number comes from."""

    grams: int
    source: str  # a key of FactorTable.sources
    year: int
    method: str
    placeholder: bool = False

    @property
    def kg(self) -> Decimal:
        return Decimal(self.grams) / 1000


@dataclass(frozen=True)
class Factor:
    """A row of the table: one device kind, its CO2e and waste figures."""

    kind: str
    co2e: Figure
    waste: Figure

    @property
    def co2e_kg(self) -> Decimal:
        return self.co2e.kg

    @property
    def waste_kg(self) -> Decimal:
        return self.waste.kg


@dataclass(frozen=True)
class KindImpact:
    """The impact of the reused devices of one kind (``devices`` x the kind's factors)."""

    devices: int
    co2e_g: int
    waste_g: int
    factor_co2e_g: int
    factor_waste_g: int

    def __post_init__(self) -> None:
        for name in ("devices", "co2e_g", "waste_g", "factor_co2e_g", "factor_waste_g"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise SchemaError(f"impact {name} must be a non-negative integer, got {shown(value)}")
        if self.devices <= 0:
            raise SchemaError("an impact line counts at least one device")
        if (
            self.co2e_g != self.devices * self.factor_co2e_g
            or self.waste_g != self.devices * self.factor_waste_g
        ):
            raise SchemaError("an impact line's amounts are not its devices times its factors")

    def to_json(self) -> dict[str, int]:
        return {
            "devices": self.devices,
            "co2e_g": self.co2e_g,
            "waste_g": self.waste_g,
            "factor_co2e_g": self.factor_co2e_g,
            "factor_waste_g": self.factor_waste_g,
        }


@dataclass(frozen=True)
class Impact:
    """Waste and CO2e avoided by a set of reused devices (a lot, an organisation, a network).

    ``by_kind`` holds only kinds with at least one reused device; ``placeholders`` names the figures
    (``"phone.waste"``) that counted as 0 because the table has no sourced value for them.  Totals
    are exact sums of ``by_kind`` (checked on construction).
    """

    devices: int
    co2e_g: int
    waste_g: int
    by_kind: Mapping[str, KindImpact]
    placeholders: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(shown(k) for k in self.by_kind if k not in DEVICE_KINDS)
        if unknown:
            raise SchemaError(f"unknown device kind(s) in the impact: {', '.join(unknown)}")
        sums = (
            sum(k.devices for k in self.by_kind.values()),
            sum(k.co2e_g for k in self.by_kind.values()),
            sum(k.waste_g for k in self.by_kind.values()),
        )
        if (self.devices, self.co2e_g, self.waste_g) != sums:
            raise SchemaError("the impact's totals are not the sums of its lines")
        for p in self.placeholders:
            kind, _, figure = p.partition(".")
            if kind not in self.by_kind or figure not in FIGURES:
                raise SchemaError(f"placeholder {shown(p)} names no counted figure")
        if list(self.placeholders) != sorted(set(self.placeholders)):
            raise SchemaError("the impact's placeholders are listed once each, sorted")

    @property
    def co2e_kg(self) -> Decimal:
        return Decimal(self.co2e_g) / 1000

    @property
    def waste_kg(self) -> Decimal:
        return Decimal(self.waste_g) / 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "co2e_g": self.co2e_g,
            "waste_g": self.waste_g,
            "by_kind": {k: self.by_kind[k].to_json() for k in DEVICE_KINDS if k in self.by_kind},
            "placeholders": list(self.placeholders),
        }

    @classmethod
    def from_json(cls, data: Any) -> Impact:
        """Strictly read :meth:`to_json`'s form (a :class:`SchemaError` for anything else)."""
        keys = {"devices", "co2e_g", "waste_g", "by_kind", "placeholders"}
        if not isinstance(data, dict) or set(data) != keys:
            raise SchemaError(f"an impact is exactly {{{', '.join(sorted(keys))}}}")
        by_kind = data["by_kind"]
        placeholders = data["placeholders"]
        if not isinstance(by_kind, dict) or not isinstance(placeholders, list):
            raise SchemaError("impact.by_kind is an object and impact.placeholders a list")
        if not all(isinstance(p, str) for p in placeholders):
            raise SchemaError("impact.placeholders lists strings")
        return cls(
            devices=data["devices"],
            co2e_g=data["co2e_g"],
            waste_g=data["waste_g"],
            by_kind={str(k): _kind_impact(v) for k, v in by_kind.items()},
            placeholders=tuple(placeholders),
        )


def _kind_impact(data: Any) -> KindImpact:
    keys = {"devices", "co2e_g", "waste_g", "factor_co2e_g", "factor_waste_g"}
    if not isinstance(data, dict) or set(data) != keys:
        raise SchemaError(f"an impact line is exactly {{{', '.join(sorted(keys))}}}")
    return KindImpact(**data)


@dataclass(frozen=True)
class FactorTable:
    """A validated factor table: every device kind once, every figure with its source."""

    name: str
    factors: Mapping[str, Factor]
    sources: Mapping[str, Source]

    def factor(self, kind: str) -> Factor:
        try:
            return self.factors[kind]
        except KeyError:
            raise ImpactTableError(f"no impact factor for device kind {shown(kind)}") from None

    def impact(self, reused: Mapping[str, int]) -> Impact:
        """The impact of ``reused`` devices, counted per kind (kinds with 0 devices may be left out)."""
        lines: dict[str, KindImpact] = {}
        placeholders: list[str] = []
        for kind, count in reused.items():
            if type(count) is not int or count < 0:
                raise ImpactTableError(
                    f"the number of reused {shown(kind)} devices must be a count, got {shown(count)}"
                )
            factor = self.factor(kind)
            if count == 0:
                continue
            lines[kind] = KindImpact(
                devices=count,
                co2e_g=count * factor.co2e.grams,
                waste_g=count * factor.waste.grams,
                factor_co2e_g=factor.co2e.grams,
                factor_waste_g=factor.waste.grams,
            )
            placeholders += [f"{kind}.{f}" for f in FIGURES if getattr(factor, f).placeholder]
        ordered = {k: lines[k] for k in DEVICE_KINDS if k in lines}
        return Impact(
            devices=sum(x.devices for x in ordered.values()),
            co2e_g=sum(x.co2e_g for x in ordered.values()),
            waste_g=sum(x.waste_g for x in ordered.values()),
            by_kind=ordered,
            placeholders=tuple(sorted(placeholders)),
        )

    def citations(self) -> list[str]:
        """Each source the table's figures use, cited once (citation and link)."""
        used = dict.fromkeys(getattr(f, fig).source for f in self.factors.values() for fig in FIGURES)
        return [self.sources[key].cite() for key in used]


# --- reading a table -----------------------------------------------------------------------------------


def _text(value: Any, what: str, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise ImpactTableError(f"{what} must be a non-empty string, got {shown(value)}")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise ImpactTableError(f"{what} is longer than {MAX_TEXT} characters or holds a NUL")
    return value.strip()


def _grams(value: Any, what: str) -> int:
    """A figure in kg (an exact decimal string, or an integer) as integer grams."""
    if type(value) is int:
        kg = Decimal(value)
    elif isinstance(value, str):
        try:
            kg = Decimal(value.strip())
        except InvalidOperation:
            raise ImpactTableError(f"{what} is not a decimal number: {shown(value)}") from None
    else:
        raise ImpactTableError(
            f'{what} must be written as a decimal string ("0.314") or an integer, got {shown(value)}'
        )
    if not kg.is_finite() or kg < 0 or kg > MAX_FIGURE_KG:
        raise ImpactTableError(f"{what} must be between 0 and {MAX_FIGURE_KG} kg, got {shown(value)}")
    grams = kg * 1000
    if grams != grams.to_integral_value():
        raise ImpactTableError(f"{what} has more than 3 decimals (grams): {shown(value)}")
    return int(grams)


def _figure(raw: Any, what: str, sources: Mapping[str, Source]) -> Figure:
    allowed = {"kg", "source", "year", "method", "placeholder"}
    if not isinstance(raw, dict) or not {"kg", "source", "year", "method"} <= set(raw) <= allowed:
        raise ImpactTableError(f"{what} needs kg, source, year and method (and optionally placeholder)")
    source = _text(raw["source"], f"{what}.source")
    if source not in sources:
        raise ImpactTableError(f"{what}.source {shown(source)} is not a key of [sources]")
    year = raw["year"]
    if type(year) is not int or year not in _YEARS:
        raise ImpactTableError(f"{what}.year must be a year, got {shown(year)}")
    placeholder = raw.get("placeholder", False)
    if not isinstance(placeholder, bool):
        raise ImpactTableError(f"{what}.placeholder must be true or false")
    grams = _grams(raw["kg"], f"{what}.kg")
    if placeholder and grams:
        raise ImpactTableError(f"{what} is a placeholder: its value must be 0 (it is not sourced)")
    return Figure(grams, source, year, _text(raw["method"], f"{what}.method"), placeholder)


def _sources(raw: Any) -> dict[str, Source]:
    if not isinstance(raw, dict) or not raw:
        raise ImpactTableError("the table needs a [sources] section naming at least one source")
    out: dict[str, Source] = {}
    for key, value in raw.items():
        if not isinstance(value, dict) or not {"citation"} <= set(value) <= {"citation", "url"}:
            raise ImpactTableError(f"source {shown(key)} needs a citation (and optionally a url)")
        url = _text(value.get("url", ""), f"sources.{key}.url", required=False)
        out[key] = Source(key, _text(value["citation"], f"sources.{key}.citation"), url)
    return out


def parse_factors(doc: Any, where: str = "the impact table") -> FactorTable:
    """Validate a decoded table (the TOML document as a dict)."""
    try:
        if not isinstance(doc, dict) or set(doc) != {"name", "sources", "factor"}:
            raise ImpactTableError("a table has exactly: name, [sources] and [[factor]] rows")
        sources = _sources(doc["sources"])
        rows = doc["factor"]
        if not isinstance(rows, list):
            raise ImpactTableError("[[factor]] must be a list of rows")
        factors: dict[str, Factor] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or set(row) != {"kind", *FIGURES}:
                raise ImpactTableError(f"factor row {i + 1} has exactly kind, co2e and waste")
            kind = row["kind"]
            if kind not in DEVICE_KINDS:
                raise ImpactTableError(f"factor row {i + 1}: unknown device kind {shown(kind)}")
            if kind in factors:
                raise ImpactTableError(f"device kind {kind} has two rows")
            factors[kind] = Factor(
                kind,
                _figure(row["co2e"], f"{kind}.co2e", sources),
                _figure(row["waste"], f"{kind}.waste", sources),
            )
        missing = [k for k in DEVICE_KINDS if k not in factors]
        if missing:
            raise ImpactTableError(f"no row for device kind(s) {', '.join(missing)} (write a placeholder)")
        return FactorTable(_text(doc["name"], "name")[:200], factors, sources)
    except ImpactTableError as e:
        raise ImpactTableError(f"{where}: {e.message}", hint=e.hint) from None


def load_factors(path: Path | None = None) -> FactorTable:
    """The network's table at ``path``, or Tabula's default (ADEME 2022) when ``path`` is None."""
    if path is None:
        return _default_table()
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_TABLE_BYTES + 1)
    except OSError as e:
        raise ImpactTableError(f"cannot read the impact table {path}: {e.strerror}") from e
    return _parse_bytes(data, str(path))


@cache
def _default_table() -> FactorTable:
    data = resources.files("certs").joinpath("data/impact_factors.toml").read_bytes()
    return _parse_bytes(data, "the default impact table")


def _parse_bytes(data: bytes, where: str) -> FactorTable:
    if len(data) > _MAX_TABLE_BYTES:
        raise ImpactTableError(f"{where} is larger than {_MAX_TABLE_BYTES} bytes")
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ImpactTableError(f"{where} is not a valid UTF-8 TOML file: {e}") from e
    return parse_factors(doc, where)
