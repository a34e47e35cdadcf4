"""NIST SP 800-88 Rev.1 section 4.7 representative sampling: properties of every plan."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erase.sampling import InvalidSamplePlan, SamplePlan, sample_plan


def check_plan(
    p: SamplePlan, size: int, sector: int, *, subsections: int, per_subsection: int, coverage: float
) -> None:
    assert p.size == size and p.sector == sector
    assert p.ranges, "a plan always reads something"
    prev_end = 0
    for off, ln in p.ranges:
        assert off >= prev_end, "sorted and non-overlapping"
        assert ln > 0 and off + ln <= size
        assert off % sector == 0
        assert ln % sector == 0 or off + ln == size, "only the device's own tail may be partial"
        prev_end = off + ln
    assert p.covered == sum(ln for _, ln in p.ranges)
    assert p.covered >= math.ceil(Fraction(coverage) * size), "coverage counted exactly, in bytes"
    assert p.ranges[0][0] == 0, "first sector included"
    assert p.ranges[-1][0] + p.ranges[-1][1] == size, "last sector included"
    if p.full:
        assert p.ranges == ((0, size),)
        return
    n_sectors = -(-size // sector)
    for i in range(subsections):
        lo = i * n_sectors // subsections * sector
        hi = min((i + 1) * n_sectors // subsections * sector, size)
        inside = [r for r in p.ranges if r[0] >= lo and r[0] + r[1] <= hi]
        assert len(inside) >= per_subsection, f"subsection {i} has {len(inside)} ranges"


@settings(max_examples=120, deadline=None)
@given(
    sectors=st.integers(1, 5_000_000),
    tail=st.integers(0, 511),
    sector=st.sampled_from([512, 4096]),
    seed=st.binary(min_size=1, max_size=32),
    subsections=st.integers(1, 300),
    per_subsection=st.integers(1, 4),
    coverage=st.sampled_from([0.01, 0.1, 0.25, 0.5, 1.0]),
    chunk=st.sampled_from([4096, 65536, 1 << 20]),
)
def test_plan_properties(
    sectors: int,
    tail: int,
    sector: int,
    seed: bytes,
    subsections: int,
    per_subsection: int,
    coverage: float,
    chunk: int,
) -> None:
    size = sectors * sector + (tail if sector == 512 else 0)
    p = sample_plan(
        size,
        sector,
        seed,
        subsections=subsections,
        per_subsection=per_subsection,
        coverage=coverage,
        chunk=chunk,
    )
    check_plan(p, size, sector, subsections=subsections, per_subsection=per_subsection, coverage=coverage)
    again = sample_plan(
        size,
        sector,
        seed,
        subsections=subsections,
        per_subsection=per_subsection,
        coverage=coverage,
        chunk=chunk,
    )
    assert again == p, "deterministic from the seed"


def test_nist_defaults_on_a_1tb_drive() -> None:
    size = 10**12 // 512 * 512
    p = sample_plan(size, 512, b"seed-1")
    assert not p.full
    check_plan(p, size, 512, subsections=1000, per_subsection=2, coverage=0.10)
    assert p.coverage < 0.11  # not far above what was asked
    assert max(ln for _, ln in p.ranges) <= 1 << 20


def test_seed_changes_the_locations_and_is_recorded() -> None:
    size = 1 << 30
    a = sample_plan(size, 4096, b"one")
    b = sample_plan(size, 4096, b"two")
    assert a.ranges != b.ranges
    assert a.seed == b"one".hex() and a.to_dict()["seed"] == a.seed
    # the locations differ, the amount does not
    assert abs(a.covered - b.covered) <= 2 * 4096


def test_small_device_degrades_to_full_coverage() -> None:
    p = sample_plan(100 * 512, 512, b"s")  # 100 sectors cannot hold 1000 x 2 ranges
    assert p.full and p.ranges == ((0, 100 * 512),) and p.coverage == 1.0


def test_ranges_spread_over_the_whole_device() -> None:
    size = 1 << 32
    p = sample_plan(size, 512, b"spread", subsections=1000)
    starts = [off for off, _ in p.ranges]
    # every 1/1000th of the device has a range starting in it
    buckets = {off * 1000 // size for off in starts}
    assert buckets == set(range(1000))


@pytest.mark.parametrize(
    "kw",
    [
        {"size": 0, "sector": 512},
        {"size": 4096, "sector": 500},
        {"size": 4096, "sector": 512, "coverage": 0.0},
        {"size": 4096, "sector": 512, "coverage": 1.5},
        {"size": 4096, "sector": 512, "subsections": 0},
        {"size": 4096, "sector": 4096, "chunk": 512},
    ],
)
def test_invalid_parameters(kw: dict[str, object]) -> None:
    with pytest.raises(InvalidSamplePlan):
        sample_plan(seed=b"x", **kw)  # type: ignore[arg-type]
