"""The overwrite engine on real loop devices: what is on the medium after each pass, verification,
odd sizes, 4Kn, resume, cancel.

Expected content is computed independently of erase/patterns.py (tests/test_patterns.reference:
AES-ECB of the counters, modular indexing of byte patterns) and compared with the *backing file*,
i.e. what really reached the "medium" below the loop device.
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path

import pytest

from erase.blockdev import BlockDevice, DeviceBusy, DeviceReadOnly, aligned_buffer
from erase.engine import verify_full, verify_sample, write_pass
from erase.methods import expand, method_names
from erase.model import Pattern, Progress, Range
from erase.sampling import sample_plan
from tests.conftest import LoopFactory
from tests.test_patterns import reference

SEED = b"tabula-test-seed-0123456789abcdef"
KIB = 1024
MIB = 1 << 20


def backing(tmp_path: Path, name: str) -> Path:
    return tmp_path / name


def read_all(path: Path) -> bytes:
    return path.read_bytes()


def corrupt(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def plant(path: Path, size: int, sector: int, rng: random.Random) -> list[bytes]:
    """Write recognisable secrets at random offsets, always including the first and the last sector."""
    secrets = []
    offsets = [0, size - sector] + [rng.randrange(0, size - 64) for _ in range(10)]
    for i, off in enumerate(offsets):
        s = f"SECRET-{i:02d}-{rng.getrandbits(64):016x}".encode()
        secrets.append(s)
        corrupt(path, min(off, size - len(s)), s)
    return secrets


class Recorder:
    def __init__(self) -> None:
        self.items: list[Progress] = []

    def __call__(self, p: Progress) -> None:
        self.items.append(p)


def nothing(p: Progress) -> None:
    pass


@pytest.mark.root
@pytest.mark.parametrize("method", method_names())
def test_every_method_every_pass_puts_its_definition_on_the_medium(
    method: str, make_loop: LoopFactory, tmp_path: Path
) -> None:
    size = 1 * MIB + 3 * 512  # not a multiple of the block size; 3 extra sectors
    loop = make_loop(size, name="m.img", fill=b"\x5a")
    img = backing(tmp_path, "m.img")
    secrets = plant(img, size, 512, random.Random(method))
    passes = expand(method, seed=SEED, custom_hex="c0ffee" if method == "custom" else None)
    with BlockDevice.open(loop, write=True) as dev:
        assert dev.size == size and dev.logical_sector_size == 512
        for i, p in enumerate(passes):
            out = write_pass(dev, p, i, block_size=256 * KIB, on_progress=nothing)
            assert out.completed and out.bad_ranges == () and out.bytes_written == size
            data = read_all(img)
            assert data == reference(p, 0, size), f"pass {i} ({p.label}) content differs"
        last = passes[-1]
        assert verify_full(dev, last, len(passes) - 1, block_size=256 * KIB, on_progress=nothing).passed
    for s in secrets:
        assert s not in data


@pytest.mark.root
@pytest.mark.parametrize(
    ("size", "block"),
    [
        (5 * MIB + 3 * 512, 1 * MIB),  # several blocks, short last block
        (3 * 512, 4 * MIB),  # smaller than one block
        (7 * MIB + 512, 2 * MIB),
    ],
)
def test_odd_sizes(size: int, block: int, make_loop: LoopFactory, tmp_path: Path) -> None:
    loop = make_loop(size, name="odd.img", fill=b"\xa5")
    img = backing(tmp_path, "odd.img")
    secrets = plant(img, size, 512, random.Random(size))
    (p,) = expand("prng", seed=SEED)
    rec = Recorder()
    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(dev, p, 0, block_size=block, on_progress=rec)
        v = verify_full(dev, p, 0, block_size=block, on_progress=nothing)
    assert out.completed and out.bytes_written == size and out.position == size
    assert v.passed and v.bytes_checked == size == v.bytes_total
    data = read_all(img)
    assert data == reference(p, 0, size)
    assert not any(s in data for s in secrets)
    final = rec.items[-1]
    assert final.done == final.total == size and final.synced and final.phase == "write"


@pytest.mark.root
def test_4kn_device(make_loop: LoopFactory, tmp_path: Path) -> None:
    size = 3 * MIB + 5 * 4096
    loop = make_loop(size, name="4k.img", sector_size=4096, fill=b"\x11")
    img = backing(tmp_path, "4k.img")
    secrets = plant(img, size, 4096, random.Random(4096))
    passes = expand("dod-short", seed=SEED)
    with BlockDevice.open(loop, write=True) as dev:
        assert dev.logical_sector_size == 4096
        for i, p in enumerate(passes):
            assert write_pass(dev, p, i, block_size=1 * MIB, on_progress=nothing).completed
            assert read_all(img) == reference(p, 0, size)
        assert not any(s in read_all(img) for s in secrets)
        bad = 2 * MIB + 3 * 4096
        corrupt(img, bad + 100, b"\x00")
        v = verify_full(dev, passes[-1], 2, block_size=1 * MIB, on_progress=nothing)
    assert not v.passed
    assert v.mismatches == (Range(bad, 4096, op="verify"),) and v.mismatch_count == 1


@pytest.mark.root
@pytest.mark.parametrize("pattern_hex", [None, "924924"])
def test_verify_full_reports_exactly_the_corrupted_sector(
    pattern_hex: str | None, make_loop: LoopFactory, tmp_path: Path
) -> None:
    size = 4 * MIB
    loop = make_loop(size, name="c.img")
    img = backing(tmp_path, "c.img")
    p = expand("prng", seed=SEED)[0] if pattern_hex is None else Pattern(kind="bytes", hex=pattern_hex)
    with BlockDevice.open(loop, write=True) as dev:
        write_pass(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
        assert verify_full(dev, p, 0, on_progress=nothing).passed
        # one bad byte in sector 2345, and two adjacent sectors 5000-5001 (coalesced into one range)
        corrupt(img, 2345 * 512 + 17, bytes([reference(p, 2345 * 512 + 17, 1)[0] ^ 0x01]))
        corrupt(img, 5000 * 512 + 500, b"\xee" * 30)
        rec = Recorder()
        v = verify_full(dev, p, 0, block_size=1 * MIB, on_progress=rec)
    assert not v.passed and v.read_errors == ()
    assert v.mismatches == (Range(2345 * 512, 512, op="verify"), Range(5000 * 512, 1024, op="verify"))
    assert v.mismatch_count == 3
    assert v.bytes_checked == size
    assert rec.items[-1].phase == "verify" and rec.items[-1].done == size


@pytest.mark.root
@pytest.mark.parametrize("where", ["first", "last"])
def test_verify_sample_catches_corrupted_first_or_last_sector(
    where: str, make_loop: LoopFactory, tmp_path: Path
) -> None:
    size = 16 * MIB
    loop = make_loop(size, name="s.img")
    img = backing(tmp_path, "s.img")
    (p,) = expand("zero", seed=SEED)
    plan = sample_plan(size, 512, b"sample-seed", subsections=100, coverage=0.05)
    assert not plan.full
    with BlockDevice.open(loop, write=True) as dev:
        write_pass(dev, p, 0, on_progress=nothing)
        rec = Recorder()
        ok = verify_sample(dev, p, 0, ranges=plan.ranges, block_size=256 * KIB, on_progress=rec)
        assert ok.passed and ok.bytes_checked == plan.covered == ok.bytes_total
        assert rec.items[-1].done == rec.items[-1].total == plan.covered
        off = 0 if where == "first" else size - 512
        corrupt(img, off + 511, b"\x01")
        v = verify_sample(dev, p, 0, ranges=plan.ranges, on_progress=nothing)
    assert not v.passed
    assert v.mismatches == (Range(off, 512, op="verify"),)


@pytest.mark.root
def test_verify_sample_rejects_bad_ranges(make_loop: LoopFactory) -> None:
    loop = make_loop(1 * MIB)
    (p,) = expand("zero", seed=SEED)
    with BlockDevice.open(loop, write=False) as dev:
        for ranges in ([(4096, 512), (0, 512)], [(100, 512)], [(MIB - 512, 1024)]):
            with pytest.raises(ValueError):
                verify_sample(dev, p, 0, ranges=ranges, on_progress=nothing)


@pytest.mark.root
def test_resume_writes_only_from_start(make_loop: LoopFactory, tmp_path: Path) -> None:
    size = 6 * MIB
    loop = make_loop(size, name="r.img", fill=b"\x77")
    img = backing(tmp_path, "r.img")
    (p,) = expand("prng", seed=SEED)
    start = 2 * MIB + 7 * 512  # not on the block grid
    rec = Recorder()
    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(dev, p, 0, start=start, block_size=1 * MIB, on_progress=rec, checkpoint_seconds=0)
    data = read_all(img)
    assert data[:start] == b"\x77" * start
    assert data[start:] == reference(p, start, size - start)
    assert out.bytes_written == size - start and out.completed
    assert rec.items[0].done == start
    dones = [x.done for x in rec.items]
    assert dones == sorted(dones) and dones[-1] == size
    synced = [x for x in rec.items if x.synced]
    assert len(synced) >= 5  # checkpoint_seconds=0: a durable checkpoint after every block
    assert synced[-1].done == size


@pytest.mark.root
def test_cancel_stops_promptly_at_a_synced_resume_point(make_loop: LoopFactory, tmp_path: Path) -> None:
    size = 8 * MIB
    loop = make_loop(size, name="x.img", fill=b"\x33")
    img = backing(tmp_path, "x.img")
    (p,) = expand("one", seed=SEED)
    cancel = threading.Event()
    rec = Recorder()

    def progress(pr: Progress) -> None:
        rec(pr)
        if pr.done >= 3 * MIB:
            cancel.set()

    with BlockDevice.open(loop, write=True) as dev:
        out = write_pass(
            dev, p, 0, block_size=1 * MIB, on_progress=progress, cancel=cancel, checkpoint_seconds=0
        )
        assert not out.completed
        assert out.position == 3 * MIB
        assert rec.items[-1].synced and rec.items[-1].done == out.position
        data = read_all(img)
        assert data[: out.position] == b"\xff" * out.position
        assert data[out.position :] == b"\x33" * (size - out.position)
        # resuming from the reported position completes the pass
        rest = write_pass(dev, p, 0, start=out.position, on_progress=nothing)
        assert rest.completed and read_all(img) == b"\xff" * size
        cancel2 = threading.Event()
        cancel2.set()
        v = verify_full(dev, p, 0, on_progress=nothing, cancel=cancel2)
        assert v.cancelled and not v.passed


@pytest.mark.root
def test_progress_is_throttled(make_loop: LoopFactory) -> None:
    loop = make_loop(32 * MIB)
    rec = Recorder()
    with BlockDevice.open(loop, write=True) as dev:
        write_pass(dev, Pattern(kind="bytes", hex="00"), 0, block_size=64 * KIB, on_progress=rec)
    # 512 blocks, but a report at most every 0.25 s (+ the first and the final synced one)
    assert len(rec.items) <= 2 + 4 * 60
    assert rec.items[-1].synced and rec.items[-1].rate > 0


@pytest.mark.root
def test_open_refuses_busy_and_read_only_devices(make_loop: LoopFactory) -> None:
    ro = make_loop(1 * MIB, read_only=True)
    with pytest.raises(DeviceReadOnly) as ei:
        BlockDevice.open(ro, write=True)
    assert ei.value.diagnostics()
    with BlockDevice.open(ro, write=False) as dev:
        assert dev.size == MIB and not dev.writable
    rw = make_loop(1 * MIB)
    holder = os.open(rw, os.O_RDONLY | os.O_EXCL)  # what a mounted filesystem does to its disk
    try:
        with pytest.raises(DeviceBusy, match="in use"):
            BlockDevice.open(rw, write=True)
    finally:
        os.close(holder)
    with BlockDevice.open(rw, write=True) as dev:
        assert dev.is_block and dev.direct


def test_regular_file_of_any_size_uses_a_buffered_tail(tmp_path: Path) -> None:
    size = 2 * MIB + 1000  # not even a multiple of 512
    img = tmp_path / "f.img"
    img.write_bytes(b"\x99" * size)
    (p,) = expand("prng", seed=SEED)
    with BlockDevice.open(str(img), write=True) as dev:
        assert not dev.is_block and dev.size == size
        out = write_pass(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
        assert out.completed and out.bytes_written == size
        assert verify_full(dev, p, 0, block_size=1 * MIB, on_progress=nothing).passed
        corrupt(img, size - 3, b"\x00\x00\x00")
        v = verify_full(dev, p, 0, block_size=1 * MIB, on_progress=nothing)
    assert img.read_bytes()[: size - 3] == reference(p, 0, size - 3)
    assert v.mismatches == (Range(size // 512 * 512, size % 512, op="verify"),)


def test_aligned_buffer_is_page_aligned() -> None:
    import ctypes

    b = aligned_buffer(1000)
    assert len(b) == 4096 and ctypes.addressof(ctypes.c_char.from_buffer(b)) % 4096 == 0


@pytest.mark.root
def test_mismatch_list_is_capped_but_the_count_is_exact(make_loop: LoopFactory, tmp_path: Path) -> None:
    loop = make_loop(2 * MIB, name="cap.img")
    img = backing(tmp_path, "cap.img")
    (p,) = expand("zero", seed=SEED)
    with BlockDevice.open(loop, write=True) as dev:
        write_pass(dev, p, 0, on_progress=nothing)
        # every other sector of the first 1.5 MiB gets one non-zero byte: 1536 separate bad sectors
        damaged = bytearray(1536 * 1024)
        for s in range(0, 3072, 2):
            damaged[s * 512 + 9] = 1
        corrupt(img, 0, bytes(damaged))
        v = verify_full(dev, p, 0, on_progress=nothing)
    assert v.mismatch_count == 1536
    assert len(v.mismatches) == 1000
    assert v.mismatches[0] == Range(0, 512, op="verify") and v.mismatches[-1] == Range(
        1998 * 512, 512, op="verify"
    )
