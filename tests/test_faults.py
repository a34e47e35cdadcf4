"""Real I/O faults under the engine: a loop device over a file served by tests/faultfs.py (FUSE).

Why the set-up looks the way it does:

* faultfs mounts with ``direct_io``: no page cache for the image, so every request of the loop device
  reaches faultfs (a cached write could succeed now and fail, unseen, at writeback).
* The loop device's requests are capped at 4 KiB (``queue/max_sectors_kb``), FUSE's write size under
  libfuse 2.  Linux (6.x) completes a loop *write* that its backing file performed only partly as a
  success (only short reads are retried); FUSE splits a large request into max_write pieces, so a
  fault in the middle of a big request would silently drop the rest of it instead of failing.  With
  one FUSE write per loop request, a fault fails the whole request, as a real drive does.
* The engine opens /dev/loopN with O_DIRECT, so the loop device's own page cache is bypassed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from erase.blockdev import BlockDevice
from erase.engine import DriveUnresponsive, verify_full, write_pass
from erase.errors import DriveGone
from erase.methods import expand
from erase.model import Pattern, Progress, Range
from tests.faultfs import FaultDisk, fault_disk, have_fuse
from tests.loopdev import attach, detach
from tests.test_patterns import reference

MIB = 1 << 20
SIZE = 4 * MIB
OLD = b"\x5a"

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not have_fuse() and not os.environ.get("CI"), reason="needs /dev/fuse, fusepy and libfuse2"
    ),
]


def nothing(p: Progress) -> None:
    pass


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[tuple[FaultDisk, str]]:
    with fault_disk(tmp_path, SIZE, fill=OLD) as fd:
        loop = attach(fd.image)
        try:
            Path(f"/sys/block/{os.path.basename(loop)}/queue/max_sectors_kb").write_text("4")
            yield fd, loop
        finally:
            detach(loop)


def sectors_covering(start: int, end: int, sector: int = 512) -> Range:
    lo = start // sector * sector
    hi = -(-end // sector) * sector
    return Range(lo, hi - lo, op="write", error=os.strerror(5))


def test_write_eio_range_is_reported_exactly_and_the_pass_continues(disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    bad_start, bad_end = 1_000_000, 1_000_700  # sectors 1953 and 1954
    fd.set_faults([{"op": "write", "mode": "eio", "start": bad_start, "end": bad_end}])
    (p,) = expand("prng", seed=b"f" * 32)
    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
    assert out.completed
    assert out.bad_ranges == (sectors_covering(bad_start, bad_end),)
    assert out.bytes_written == SIZE - 1024
    data = fd.backing.read_bytes()
    want = reference(p, 0, SIZE)
    bad = out.bad_ranges[0]
    assert data[: bad.offset] == want[: bad.offset]
    assert data[bad.end :] == want[bad.end :], "the pass went on after the bad sectors"
    assert data[bad.offset : bad.end] == OLD * bad.length


def test_write_eio_with_abort_stops_after_the_failing_block(disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    fd.set_faults([{"op": "write", "mode": "eio", "start": 1_500_000, "end": 1_500_001}])
    p = Pattern(kind="bytes", hex="00")
    rec: list[Progress] = []
    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(dev, p, 0, block_size=1 * MIB, on_progress=rec.append, on_error="abort")
    assert not out.completed
    assert out.bad_ranges == (sectors_covering(1_500_000, 1_500_001),)
    assert out.position == 2 * MIB  # the failing block was finished sector by sector, then stop
    assert rec[-1].synced and rec[-1].done == 2 * MIB and rec[-1].errors == out.bad_ranges
    assert fd.backing.read_bytes()[2 * MIB :] == OLD * (SIZE - 2 * MIB)


def test_lying_drive_is_caught_by_verification(disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    lie_start, lie_end = 2_000_000, 2_000_100  # inside sector 3906
    fd.set_faults([{"op": "write", "mode": "drop", "start": lie_start, "end": lie_end}])
    (p,) = expand("one", seed=b"f" * 32)
    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
        assert out.completed and out.bad_ranges == ()  # the drive said everything went fine
        v = verify_full(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
    assert not v.passed
    assert v.mismatches == (Range(3906 * 512, 512, op="verify"),)
    assert v.mismatch_count == 1 and v.read_errors == ()


def test_read_errors_during_verification_are_reported(disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    (p,) = expand("zero", seed=b"f" * 32)
    with BlockDevice.open(loop, write=True) as dev:
        assert write_pass(dev, p, 0, on_progress=nothing).completed
        fd.set_faults([{"op": "read", "mode": "eio", "start": 3 * MIB + 10, "end": 3 * MIB + 20}])
        v = verify_full(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
    assert not v.passed and v.mismatch_count == 0
    assert v.read_errors == (Range(3 * MIB, 512, op="read", error=os.strerror(5)),)
    assert v.read_error_count == 1 and v.bytes_checked == SIZE - 512


@pytest.mark.parametrize("how", ["all-io-fails", "fuse-killed"])
def test_vanishing_drive_raises_drive_gone(how: str, disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    (p,) = expand("prng", seed=b"f" * 32)
    triggered = []

    def progress(pr: Progress) -> None:
        if pr.done >= 1 * MIB and not triggered:
            triggered.append(pr.done)
            if how == "all-io-fails":
                fd.set_faults([{"op": "all", "mode": "eio", "start": 0, "end": 1 << 62}])
            else:
                fd.kill()

    with BlockDevice.open(loop, write=True) as dev, pytest.raises(DriveGone) as ei:
        write_pass(dev, p, 0, block_size=512 * 1024, on_progress=progress, checkpoint_seconds=0)
    assert triggered, "the fault was injected mid-pass"
    assert "drive" in ei.value.diagnostics()


def test_drive_refusing_every_write_is_unresponsive_not_retried_forever(disk: tuple[FaultDisk, str]) -> None:
    fd, loop = disk
    # Reads still work (so the drive is there), every write fails: a worn-out SSD gone read-only.
    fd.set_faults([{"op": "write", "mode": "eio", "start": 0, "end": 1 << 62}])
    with BlockDevice.open(loop, write=True) as dev, pytest.raises(DriveUnresponsive) as ei:
        write_pass(dev, Pattern(kind="bytes", hex="00"), 0, block_size=64 * 1024, on_progress=nothing)
    assert "3 consecutive blocks" in str(ei.value)
    assert isinstance(ei.value, DriveGone)
    assert fd.backing.read_bytes() == OLD * SIZE
