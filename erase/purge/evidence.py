"""The data half of a firmware step's evidence: what the drive returns when read back.

An exit code proves nothing (see tests/qemu/README.md: hdparm, sg_format and sg_sanitize all exit 0
having erased nothing).  After each firmware step the same deterministic sample of the device
(:func:`erase.sampling.sample_plan`) is read:

* ``zeros`` / ``ones``: every sampled byte must be 0x00 / 0xFF (:func:`erase.engine.verify_sample`);
* ``zeros-or-ones``: either of the two, uniformly (a normal ATA security erase writes one of them);
* ``changed``: every sampled range must hash differently from before the step (crypto erase: the
  old data, now decrypted with a new key, looks random).  A sample that was already blank before
  the step cannot show any change, so it fails: no proof, no level.  A TCG drive whose locking
  range is locked refuses every read until its PSID revert: such a range, unreadable before the
  revert (:func:`hash_samples` with ``unreadable_ok``), counts as changed when it reads after it (the lock is gone,
  which without the owner's password only the revert, which destroys the key, can do); a range
  still unreadable afterwards fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from erase.blockdev import BlockDevice, aligned_buffer
from erase.engine import verify_sample
from erase.model import Pattern, Progress
from erase.sampling import sample_plan

MAX_RANGE = 1 << 20


@dataclass(frozen=True)
class DataCheck:
    kind: str  # zeros, ones, zeros-or-ones, changed
    passed: bool
    bytes_total: int  # device size
    bytes_checked: int
    ranges: int
    mismatch_count: int  # sectors (pattern checks) or ranges (changed) that did not match
    seed: str
    detail: str
    first_mismatch: int | None = None  # byte offset

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataCheck:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def sample_ranges(size: int, sector: int, seed: bytes) -> list[tuple[int, int]]:
    """The sampled ranges, split so that none is longer than :data:`MAX_RANGE`."""
    out: list[tuple[int, int]] = []
    for off, ln in sample_plan(size, sector, seed).ranges:
        while ln > MAX_RANGE:
            out.append((off, MAX_RANGE))
            off += MAX_RANGE
            ln -= MAX_RANGE
        out.append((off, ln))
    return out


def hash_samples(path: str, seed: bytes, *, unreadable_ok: bool = False) -> list[str | None]:
    """SHA-256 of every sampled range of the device at ``path`` (read-only, O_DIRECT).  A range the
    drive refuses to read (a locked drive) is None with ``unreadable_ok``, else its error is raised."""
    with BlockDevice.open(path, write=False) as dev:
        ranges = sample_ranges(dev.size, dev.logical_sector_size, seed)
        buf = aligned_buffer(MAX_RANGE)
        view = memoryview(buf)
        try:
            out: list[str | None] = []
            for off, ln in ranges:
                try:
                    dev.pread_into(view[:ln], off)
                except OSError:
                    if not unreadable_ok:
                        raise
                    out.append(None)
                    continue
                out.append(hashlib.sha256(view[:ln]).hexdigest())
            return out
        finally:
            view.release()
            buf.close()


def blank_hashes(path: str, seed: bytes) -> set[str]:
    """Hashes of all-zero and all-0xFF ranges of the sampled lengths (a blank sample proves nothing)."""
    with BlockDevice.open(path, write=False) as dev:
        ranges = sample_ranges(dev.size, dev.logical_sector_size, seed)
    out = set()
    for ln in {ln for _, ln in ranges}:
        out.add(hashlib.sha256(bytes(ln)).hexdigest())
        out.add(hashlib.sha256(b"\xff" * ln).hexdigest())
    return out


@dataclass(frozen=True)
class _Comparison:
    """Which sampled ranges fail a ``changed`` check, and why."""

    same: list[int]  # readable before and after, unchanged
    was_blank: list[int]  # blank before: no change can be shown
    unreadable: list[int]  # unreadable after the step
    unlocked: int  # unreadable before (a locked drive), readable after

    @property
    def bad(self) -> list[int]:
        return sorted(set(self.same) | set(self.was_blank) | set(self.unreadable))

    def detail(self, ranges: int) -> str:
        if not self.bad:
            if not self.unlocked:
                return f"all {ranges} sampled ranges differ from before the step"
            return (
                f"all {ranges} sampled ranges read after the step; {self.unlocked} of them were "
                "unreadable before it (the drive was locked) and the others differ from before"
            )
        text = f"{len(self.same)} of {ranges} sampled ranges unchanged"
        if self.was_blank:
            text += f", {len(self.was_blank)} were blank before (no change can be shown)"
        if self.unreadable:
            text += f", {len(self.unreadable)} still unreadable after the step (the drive is still locked?)"
        return text


def _compare(before: Sequence[str | None], after: Sequence[str | None], blanks: set[str]) -> _Comparison:
    pairs = list(zip(before, after, strict=True))
    return _Comparison(
        same=[i for i, (b, a) in enumerate(pairs) if b is not None and a == b],
        was_blank=[i for i, (b, _) in enumerate(pairs) if b is not None and b in blanks],
        unreadable=[i for i, (_, a) in enumerate(pairs) if a is None],
        unlocked=sum(1 for b, a in pairs if b is None and a is not None),
    )


def check_changed(path: str, seed: bytes, before: Sequence[str | None]) -> DataCheck:
    """Every sampled range differs from ``before`` (None: unreadable then, which must read now)."""
    after = hash_samples(path, seed, unreadable_ok=any(b is None for b in before))
    with BlockDevice.open(path, write=False) as dev:
        size = dev.size
        ranges = sample_ranges(size, dev.logical_sector_size, seed)
    if len(after) != len(before):
        detail = "the device size changed between the two samples"
        return DataCheck("changed", False, size, 0, len(after), len(after), seed.hex(), detail)
    found = _compare(before, after, blank_hashes(path, seed))
    bad = found.bad
    checked = sum(ln for i, (_, ln) in enumerate(ranges) if after[i] is not None)
    first = ranges[bad[0]][0] if bad else None
    detail = found.detail(len(after))
    return DataCheck("changed", not bad, size, checked, len(after), len(bad), seed.hex(), detail, first)


def check_pattern(path: str, seed: bytes, kind: str) -> DataCheck:
    """Sampled read-back expecting zeros, ones, or (``zeros-or-ones``) either of them."""
    patterns = {"zeros": ["00"], "ones": ["ff"], "zeros-or-ones": ["00", "ff"]}[kind]
    last: DataCheck | None = None
    for hexpat in patterns:
        with BlockDevice.open(path, write=False) as dev:
            ranges = [(o, ln) for o, ln in sample_plan(dev.size, dev.logical_sector_size, seed).ranges]

            def progress(p: Progress) -> None:
                return None

            out = verify_sample(
                dev, Pattern(kind="bytes", hex=hexpat), 0, ranges=ranges, on_progress=progress
            )
            first = (
                out.mismatches[0].offset
                if out.mismatches
                else (out.read_errors[0].offset if out.read_errors else None)
            )
            label = "0x00" if hexpat == "00" else "0xFF"
            detail = (
                f"every sampled byte reads {label} ({out.bytes_checked} bytes in {len(ranges)} ranges)"
                if out.passed
                else f"{out.mismatch_count} sampled sector(s) are not {label}"
                + (f", {out.read_error_count} unreadable" if out.read_error_count else "")
            )
            last = DataCheck(
                kind,
                out.passed,
                dev.size,
                out.bytes_checked,
                len(ranges),
                out.mismatch_count + out.read_error_count,
                seed.hex(),
                detail,
                first,
            )
        if last.passed:
            return last
    assert last is not None
    return last
