"""Representative sampling for verification (NIST SP 800-88 Rev.1 section 4.7).

The device is cut into ``subsections`` equal parts; in every part at least ``per_subsection``
non-overlapping pseudorandom ranges are chosen; the first and last sectors are always included;
and the ranges add up to at least ``coverage`` of the device, counted exactly in bytes.

The choice is a pure function of ``(size, sector, seed, options)``: the seed is recorded with the
job so the very same sample can be read again later.  The generator is our own (SHA-256 in counter
mode with rejection sampling), not :mod:`random`, so the plan cannot change with the Python version.

A device too small for the requested plan degrades to full coverage (one range over everything).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction

from erase.errors import EraseError


class InvalidSamplePlan(EraseError):
    """The sampling parameters make no sense (negative size, coverage above 100 %, ...)."""


class _DetRng:
    """A deterministic uniform integer generator: SHA-256(key || counter), 64 bits at a time."""

    def __init__(self, seed: bytes) -> None:
        self._key = hashlib.sha256(b"tabula-sample-v1\0" + seed).digest()
        self._counter = 0
        self._pool: list[int] = []

    def _next64(self) -> int:
        if not self._pool:
            block = hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
            self._pool = [int.from_bytes(block[i : i + 8], "big") for i in range(24, -1, -8)]
        return self._pool.pop()

    def below(self, n: int) -> int:
        """A uniform integer in ``[0, n)``."""
        if n <= 0:
            raise ValueError("n must be positive")
        if n == 1:
            return 0
        if n > 1 << 64:
            raise ValueError("range too large")
        limit = ((1 << 64) // n) * n
        while True:
            x = self._next64()
            if x < limit:
                return x % n


@dataclass(frozen=True)
class SamplePlan:
    size: int
    sector: int
    seed: str  # hex of the seed the plan was made from
    ranges: tuple[tuple[int, int], ...]  # (offset, length), sorted, non-overlapping, sector-aligned
    covered: int  # exact number of bytes in ranges
    subsections: int  # subsections used (0 when the plan degraded to full coverage)
    per_subsection: int  # ranges drawn in each subsection
    full: bool  # True when the plan is the whole device

    @property
    def coverage(self) -> float:
        return self.covered / self.size if self.size else 1.0

    def to_dict(self) -> dict[str, object]:
        """The parameters needed to rebuild the plan (not the ranges: they follow from the seed)."""
        return {
            "size": self.size,
            "sector": self.sector,
            "seed": self.seed,
            "subsections": self.subsections,
            "per_subsection": self.per_subsection,
            "covered": self.covered,
            "full": self.full,
        }


def _full(size: int, sector: int, seed: bytes) -> SamplePlan:
    return SamplePlan(size, sector, seed.hex(), ((0, size),), size, 0, 0, True)


def _check_arguments(
    size: int, sector: int, seed: bytes, subsections: int, per_subsection: int, coverage: float, chunk: int
) -> None:
    if size <= 0:
        raise InvalidSamplePlan(f"device size must be positive, got {size}")
    if sector <= 0 or sector & (sector - 1):
        raise InvalidSamplePlan(f"sector size must be a power of two, got {sector}")
    if not isinstance(seed, bytes) or not seed:
        raise InvalidSamplePlan("a sample plan needs a non-empty seed")
    if subsections < 1 or per_subsection < 1:
        raise InvalidSamplePlan("subsections and ranges per subsection must be at least 1")
    if not 0 < coverage <= 1:
        raise InvalidSamplePlan(f"coverage must be in (0, 1], got {coverage}")
    if chunk < sector:
        raise InvalidSamplePlan(f"chunk ({chunk}) must be at least one sector ({sector})")


def sample_plan(
    size: int,
    sector: int,
    seed: bytes,
    *,
    subsections: int = 1000,
    per_subsection: int = 2,
    coverage: float = 0.10,
    chunk: int = 1 << 20,
) -> SamplePlan:
    """Plan which ranges of a ``size``-byte device to read back.  See the module docstring."""
    _check_arguments(size, sector, seed, subsections, per_subsection, coverage, chunk)
    n_sectors = -(-size // sector)  # the last sector may be partial on a regular file
    target = math.ceil(Fraction(coverage) * size)
    # One spare sector makes up for a partial last sector inside a range.
    target_sectors = -(-target // sector) + 1
    k = subsections
    shortest = n_sectors // k
    per_chunk = max(1, chunk // sector)
    m = max(per_subsection, -(-target_sectors // (k * per_chunk)))
    r = max(1, -(-target_sectors // (k * m)))
    if shortest == 0 or m * r > shortest or k * m * r >= n_sectors:
        return _full(size, sector, seed)

    rng = _DetRng(seed)
    sectors: list[tuple[int, int]] = []  # (first sector, sector count)
    for i in range(k):
        lo = i * n_sectors // k
        hi = (i + 1) * n_sectors // k
        free = (hi - lo) - m * r
        gaps = sorted(rng.below(free + 1) for _ in range(m))
        sectors.extend((lo + g + j * r, r) for j, g in enumerate(gaps))
    if sectors[0][0] != 0:
        sectors.insert(0, (0, 1))
    last_first, last_count = sectors[-1]
    if last_first + last_count != n_sectors:
        sectors.append((n_sectors - 1, 1))

    ranges = tuple((first * sector, min(count * sector, size - first * sector)) for first, count in sectors)
    covered = sum(ln for _, ln in ranges)
    if covered < target:  # cannot happen with the spare sector; kept as a hard guarantee
        return _full(size, sector, seed)
    return SamplePlan(size, sector, seed.hex(), ranges, covered, k, m, False)
