"""Sizes, rates and durations for people: decimal units, one unit system per language."""

from __future__ import annotations

import math

import pytest

from host.units import human_duration, human_rate, human_size


@pytest.mark.parametrize(
    ("n", "en", "fr"),
    [
        (0, "0 B", "0 o"),
        (512, "512 B", "512 o"),
        (16 << 20, "16.8 MB", "16,8 Mo"),
        (500_107_862_016, "500 GB", "500 Go"),
        (1_000_204_886_016, "1.0 TB", "1,0 To"),
        (2 * 10**18, "2000 PB", "2000 Po"),
    ],
)
def test_sizes_in_each_language(n: int, en: str, fr: str) -> None:
    assert human_size(n) == human_size(n, "en") == en
    assert human_size(n, "fr") == fr


def test_fixed_decimals_for_a_certificate() -> None:
    assert human_size(1_234_567_890, "en", digits=2) == "1.23 GB"
    assert human_size(1_234_567_890, "fr", digits=2) == "1,23 Go"


def test_rates() -> None:
    assert human_rate(455e6) == "455 MB/s"
    assert human_rate(5.2e6) == "5.2 MB/s"
    assert human_rate(455e6, "fr") == "455 Mo/s"
    assert human_rate(5.2e6, "fr") == "5,2 Mo/s"


def test_durations() -> None:
    assert human_duration(42) == "0:42"
    assert human_duration(62) == "1:02"
    assert human_duration(3 * 3600 + 7 * 60) == "3h07"
    assert human_duration(-1) == human_duration(math.inf) == human_duration(math.nan) == "?"
