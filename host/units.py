"""Sizes, rates and durations for people: one unit system per language.

Decimal units, as drives are sold (a "500 GB" drive holds 500 x 10^9 bytes).  English writes
``500 GB``, ``1.5 TB``, ``455 MB/s``; French writes ``500 Go``, ``1,5 To``, ``455 Mo/s`` (octets,
and a decimal comma).  Durations are language-neutral: ``0:42``, ``12:05``, ``3h07``.
"""

from __future__ import annotations

import math

SIZE_UNITS: dict[str, tuple[str, ...]] = {
    "en": ("B", "kB", "MB", "GB", "TB", "PB"),
    "fr": ("o", "ko", "Mo", "Go", "To", "Po"),
}


def _units(lang: str) -> tuple[str, ...]:
    return SIZE_UNITS.get(lang, SIZE_UNITS["en"])


def _number(value: float, digits: int, lang: str) -> str:
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "fr" else text


def human_size(n: float, lang: str = "en", *, digits: int | None = None) -> str:
    """``500 GB``, ``1.0 TB``, ``16.8 MB``, ``512 B``.

    ``digits`` fixes the decimals (a certificate wants ``1.23 GB``); by default there is one below
    100 and none above, so a value never needs more than four characters.
    """
    units = _units(lang)
    value = float(n)
    for unit in units:
        if abs(value) < 1000 or unit == units[-1]:
            if unit == units[0]:
                return f"{int(value)} {unit}"
            places = digits if digits is not None else (0 if abs(value) >= 100 else 1)
            return f"{_number(value, places, lang)} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_rate(bytes_per_second: float, lang: str = "en") -> str:
    """``455 MB/s``, ``5.2 MB/s`` (French ``Mo/s``)."""
    mb = bytes_per_second / 1e6
    unit = _units(lang)[2]
    return f"{_number(mb, 0 if bytes_per_second >= 10e6 else 1, lang)} {unit}/s"


def human_duration(seconds: float) -> str:
    """``0:42``, ``12:05``, ``3h07``; ``?`` when unknown (negative, infinite, NaN)."""
    if seconds < 0 or math.isinf(seconds) or math.isnan(seconds):
        return "?"
    s = int(round(seconds))
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}h{(s % 3600) // 60:02d}"
