"""The overwrite engine: write one pass over a device, then read it back and compare.

Design
------
* **Double buffering.**  A helper thread prepares the next buffer while the calling thread does I/O on
  the current one.  For a write pass the helper *generates* (AES-CTR ``update_into`` holds the GIL, the
  ``pwrite`` of the other thread releases it); for verification the helper *reads* (``preadv`` releases
  the GIL) while the caller generates the expected bytes and compares them with libc ``memcmp``
  (through ctypes, which also releases the GIL).  Buffers are page-aligned mmaps, I/O is O_DIRECT.
* **Durability.**  Every ``checkpoint_seconds`` the engine calls ``fdatasync`` (on a block device this
  also flushes the drive's write cache) and reports ``Progress(synced=True, done=N)``: everything below
  N is on the medium, so a job can resume from N.  The end of a pass, a cancel and an abort sync too.
* **I/O errors.**  A block that fails is retried one logical sector at a time; sectors that still fail
  become ``Range(op="write"|"read", error=strerror)`` (adjacent sectors coalesced) and the pass goes on
  (``on_error="continue"``) or stops after that block (``"abort"``).
* **A drive that is gone** raises :class:`erase.errors.DriveGone`, when any of these holds:

  - an error number that means "no such device": ENODEV, ENXIO, ENOENT, ESHUTDOWN, ENOMEDIUM, ENOTCONN;
  - the size the kernel reports for the open device changed (0 after a hot-unplug);
  - ``PROBE_EVERY`` sectors in a row failed and a probe read of both the first and the last sector
    fails as well (a drive that stopped answering turns every request into EIO);
  - ``GONE_AFTER_DEAD_BLOCKS`` consecutive blocks failed on every single sector
    (:class:`DriveUnresponsive`): a drive that still answers reads but refuses every write, as a
    worn-out SSD that switched itself read-only does, cannot be erased and retrying each of its
    sectors would take days.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from erase.blockdev import PAGE, BlockDevice, aligned_buffer
from erase.errors import DeviceError, DriveGone
from erase.model import Pattern, Progress, Range
from erase.patterns import PatternSource

DEFAULT_BLOCK = 4 << 20
PROGRESS_INTERVAL = 0.25  # at most ~4 progress reports per second
PROBE_EVERY = 64  # consecutive failed sectors before probing whether the drive is still there
GONE_AFTER_DEAD_BLOCKS = 3
MAX_REPORTED_RANGES = 1000
COMPARE_CHUNK = 256 << 10  # expected bytes are generated and compared this much at a time

GONE_ERRNOS = frozenset(
    {errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.ESHUTDOWN, errno.ENOMEDIUM, errno.ENOTCONN}
)


class DriveUnresponsive(DriveGone):
    """The drive answers, but every sector of several consecutive blocks failed."""

    hint = "the drive is failing: record it as not erased and destroy it, or retry it on another port"


class FlushFailed(DeviceError):
    """The drive could not make written data durable (its cache flush failed)."""

    hint = "the drive is failing: record it as not erased"


@dataclass(frozen=True)
class PassOutcome:
    bytes_written: int  # bytes written successfully by this call (bad sectors excluded)
    bad_ranges: tuple[Range, ...]  # sectors that could not be written, coalesced
    completed: bool  # True when every byte from ``start`` to the end was attempted
    position: int = 0  # absolute offset reached; with completed=False, where to resume (synced)


@dataclass(frozen=True)
class VerifyOutcome:
    bytes_checked: int  # bytes read back and compared
    bytes_total: int  # bytes that were planned
    mismatches: tuple[Range, ...]  # first MAX_REPORTED_RANGES mismatching ranges (sector granularity)
    mismatch_count: int  # mismatching sectors, all of them
    read_errors: tuple[Range, ...] = ()  # unreadable ranges (capped like mismatches)
    read_error_count: int = 0  # unreadable sectors, all of them
    cancelled: bool = False
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        ok = (
            not self.cancelled
            and self.mismatch_count == 0
            and self.read_error_count == 0
            and self.bytes_checked == self.bytes_total
        )
        object.__setattr__(self, "passed", ok)


# --------------------------------------------------------------------------- helpers
_libc = ctypes.CDLL(None)
_memcmp = _libc.memcmp
_memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_memcmp.restype = ctypes.c_int


class _Slot:
    """One page-aligned I/O buffer, with what it currently holds."""

    def __init__(self, size: int) -> None:
        self.map: mmap.mmap = aligned_buffer(size)
        self.view = memoryview(self.map)
        self.addr: int = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        self.tag: object | None = None  # PatternSource.content_tag of the content, when known


class _RangeList:
    """Coalescing, capped list of sector ranges, with an exact count of sectors."""

    def __init__(self, op: Literal["write", "read", "verify"], sector: int) -> None:
        self.op: Literal["write", "read", "verify"] = op
        self.sector = sector
        self.items: list[Range] = []
        self.sectors = 0
        self.nbytes = 0

    def add(self, offset: int, length: int, error: str = "") -> None:
        self.sectors += -(-length // self.sector)
        self.nbytes += length
        last = self.items[-1] if self.items else None
        if last is not None and last.end == offset and last.error == error:
            self.items[-1] = Range(last.offset, last.length + length, op=self.op, error=error)
        elif len(self.items) < MAX_REPORTED_RANGES:
            self.items.append(Range(offset, length, op=self.op, error=error))

    def tuple(self) -> tuple[Range, ...]:
        return tuple(self.items)


class _Reporter:
    def __init__(
        self, phase: Literal["write", "verify"], pass_index: int, total: int, cb: Callable[[Progress], None]
    ) -> None:
        self.phase: Literal["write", "verify"] = phase
        self.pass_index = pass_index
        self.total = total
        self.cb = cb
        self.rate = 0.0
        self._last_t = time.monotonic()
        self._last_done: int | None = None
        self._last_report = 0.0

    def report(
        self, done: int, *, synced: bool = False, force: bool = False, errors: Sequence[Range] = ()
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < PROGRESS_INTERVAL:
            return
        if self._last_done is not None and now > self._last_t and done >= self._last_done:
            inst = (done - self._last_done) / (now - self._last_t)
            self.rate = inst if self.rate == 0.0 else 0.7 * self.rate + 0.3 * inst
        self._last_t, self._last_done, self._last_report = now, done, now
        self.cb(
            Progress(
                phase=self.phase,
                pass_index=self.pass_index,
                done=done,
                total=self.total,
                rate=self.rate,
                synced=synced,
                errors=tuple(errors),
            )
        )


class _Pipeline:
    """Runs ``produce(offset, length, slot)`` for each item in a helper thread, ``depth`` items ahead.

    Iterating yields ``(offset, length, slot, error)`` in order; ``error`` is the OSError the producer
    met (the consumer decides what it means).  Any other exception in the producer is re-raised in the
    consumer.  A slot is handed back to the producer when the consumer asks for the next item.
    """

    _END = object()

    def __init__(
        self,
        items: Iterable[tuple[int, int]],
        produce: Callable[[int, int, _Slot], None],
        slot_size: int,
        depth: int = 2,
    ) -> None:
        self._items = items
        self._produce = produce
        self._free: queue.Queue[_Slot | None] = queue.Queue()
        self._full: queue.Queue[object] = queue.Queue()
        self._stop = threading.Event()
        for _ in range(depth):
            self._free.put(_Slot(slot_size))
        self._thread = threading.Thread(target=self._run, name="tabula-engine-producer", daemon=True)

    def _run(self) -> None:
        try:
            for off, n in self._items:
                slot = self._free.get()
                if slot is None or self._stop.is_set():
                    return
                err: OSError | None = None
                try:
                    self._produce(off, n, slot)
                except OSError as e:
                    err = e
                self._full.put((off, n, slot, err))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer thread, which re-raises it
            self._full.put(("raise", e))
            return
        self._full.put(self._END)

    def __iter__(self) -> Iterator[tuple[int, int, _Slot, OSError | None]]:
        self._thread.start()
        previous: _Slot | None = None
        while True:
            if previous is not None:
                self._free.put(previous)
            item = self._full.get()
            if item is self._END:
                return
            assert isinstance(item, tuple)
            if item[0] == "raise":
                raise item[1]
            off, n, slot, err = item
            previous = slot
            yield off, n, slot, err

    def close(self) -> None:
        self._stop.set()
        self._free.put(None)
        self._thread.join()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gone(e: OSError) -> bool:
    return e.errno in GONE_ERRNOS


def _strerror(e: OSError) -> str:
    return e.strerror or str(e)


def _check_size(dev: BlockDevice) -> None:
    """Raise DriveGone if the kernel no longer reports the device's size (0 after a hot-unplug)."""
    try:
        size = dev.current_size()
    except OSError as e:
        raise DriveGone(f"{dev.path}: the drive no longer answers ({_strerror(e)})") from e
    if size != dev.size:
        raise DriveGone(f"{dev.path}: the drive disappeared (its size changed from {dev.size} to {size})")


def _check_still_there(dev: BlockDevice, cause: OSError | None = None) -> None:
    """Raise DriveGone if the device changed size or no longer answers reads at both ends."""
    _check_size(dev)
    sector = dev.logical_sector_size
    buf = aligned_buffer(PAGE if sector <= PAGE else sector)
    view = memoryview(buf)
    failures: list[OSError] = []
    ends = {0, max(0, (dev.size - 1) // sector * sector)}
    for off in sorted(ends):
        n = min(sector, dev.size - off)
        if n <= 0:
            continue
        try:
            dev.pread_into(view[:n], off)
        except OSError as e:
            if _gone(e):
                raise DriveGone(f"{dev.path}: the drive disappeared ({_strerror(e)})") from e
            failures.append(e)
    if failures and len(failures) == len(ends):
        raise DriveGone(
            f"{dev.path}: the drive stopped answering: reads of its first and last sector fail "
            f"({_strerror(failures[0])})"
        ) from (cause or failures[0])


def _raise_if_gone(dev: BlockDevice, e: OSError) -> None:
    if _gone(e):
        raise DriveGone(f"{dev.path}: the drive disappeared ({_strerror(e)})") from e


def _retry_sectors(
    dev: BlockDevice,
    io: Callable[[memoryview, int], int],
    view: memoryview,
    offset: int,
    bad: _RangeList,
) -> list[tuple[int, int]]:
    """Redo a failed block one logical sector at a time; returns the (offset, length) spans that worked."""
    sector = dev.logical_sector_size
    ok: list[tuple[int, int]] = []
    run = 0
    n = view.nbytes
    for i in range(0, n, sector):
        ln = min(sector, n - i)
        try:
            io(view[i : i + ln], offset + i)
        except OSError as e:
            _raise_if_gone(dev, e)
            bad.add(offset + i, ln, _strerror(e))
            run += 1
            if run % PROBE_EVERY == 0:
                _check_still_there(dev, e)
            continue
        run = 0
        if ok and ok[-1][0] + ok[-1][1] == offset + i:
            ok[-1] = (ok[-1][0], ok[-1][1] + ln)
        else:
            ok.append((offset + i, ln))
    return ok


def _block_size(dev: BlockDevice, block_size: int) -> int:
    unit = max(PAGE, dev.logical_sector_size)
    if block_size < unit:
        return unit
    return block_size // unit * unit


def _blocks(start: int, end: int, block_size: int) -> Iterator[tuple[int, int]]:
    """(offset, length) blocks covering [start, end), aligned to the block grid after the first."""
    off = start
    while off < end:
        nxt = min((off // block_size + 1) * block_size, end)
        yield off, nxt - off
        off = nxt


def _sync(dev: BlockDevice) -> None:
    try:
        dev.fdatasync()
    except OSError as e:
        _raise_if_gone(dev, e)
        _check_still_there(dev, e)
        raise FlushFailed(f"{dev.path}: flushing written data failed ({_strerror(e)})") from e


# --------------------------------------------------------------------------- write
# Long on purpose: the write loop is the hot path.  Its state (position, bytes written, dead
# blocks in a row, last checkpoint) lives in locals that every branch updates; split into functions
# it would travel as a mutable record through every block of every pass.
def write_pass(
    dev: BlockDevice,
    pattern: Pattern,
    pass_index: int,
    *,
    start: int = 0,
    block_size: int = DEFAULT_BLOCK,
    on_progress: Callable[[Progress], None],
    cancel: threading.Event | None = None,
    checkpoint_seconds: float = 5.0,
    on_error: Literal["continue", "abort"] = "continue",
) -> PassOutcome:
    """Write ``pattern`` over ``[start, dev.size)``.  See the module docstring for errors and syncing.

    Progress reports carry the absolute offset reached (``done``), ``total = dev.size`` and, in
    ``errors``, every bad range found so far in this pass (capped at MAX_REPORTED_RANGES).
    """
    if not dev.writable:
        raise DeviceError(f"{dev.path} was opened read-only")
    if on_error not in ("continue", "abort"):
        raise ValueError(f"on_error must be 'continue' or 'abort', got {on_error!r}")
    size = dev.size
    sector = dev.logical_sector_size
    if not 0 <= start <= size or start % sector:
        raise ValueError(f"start {start} must be a multiple of {sector} within [0, {size}]")
    bs = _block_size(dev, block_size)
    src = PatternSource(pattern, chunk=bs)
    reporter = _Reporter("write", pass_index, size, on_progress)
    bad = _RangeList("write", sector)

    def produce(off: int, n: int, slot: _Slot) -> None:
        tag = src.content_tag(off, n)
        if tag is None or tag != slot.tag:
            slot.tag = None
            src.fill(off, slot.view[:n])
            slot.tag = tag

    written = 0
    pos = start
    completed = True
    dead_blocks = 0
    last_sync = time.monotonic()
    reporter.report(pos, force=True)
    with _Pipeline(_blocks(start, size, bs), produce, bs) as pipe:
        for off, n, slot, perr in pipe:
            if perr is not None:  # generating never does I/O; an OSError here is a real bug
                raise perr
            if cancel is not None and cancel.is_set():
                completed = False
                break
            view = slot.view[:n]
            try:
                dev.pwrite(view, off)
                written += n
                dead_blocks = 0
            except OSError as e:
                _raise_if_gone(dev, e)
                ok = _retry_sectors(dev, dev.pwrite, view, off, bad)
                ok_bytes = sum(ln for _, ln in ok)
                written += ok_bytes
                if ok_bytes == 0:
                    dead_blocks += 1
                    _check_still_there(dev, e)
                    if dead_blocks >= GONE_AFTER_DEAD_BLOCKS:
                        raise DriveUnresponsive(
                            f"{dev.path}: every sector of {dead_blocks} consecutive blocks failed to write "
                            f"(last at offset {off}: {_strerror(e)})"
                        ) from e
                else:
                    dead_blocks = 0
                pos = off + n
                reporter.report(pos, errors=bad.items)
                if on_error == "abort":
                    completed = False
                    break
                continue
            pos = off + n
            now = time.monotonic()
            if now - last_sync >= checkpoint_seconds:
                _sync(dev)
                _check_size(dev)
                last_sync = now
                reporter.report(pos, synced=True, force=True, errors=bad.items)
            else:
                reporter.report(pos, errors=bad.items)
    _sync(dev)
    reporter.report(pos, synced=True, force=True, errors=bad.items)
    return PassOutcome(bytes_written=written, bad_ranges=bad.tuple(), completed=completed, position=pos)


# --------------------------------------------------------------------------- verify
# Long on purpose: the read-back loop is the hot path, for the same reason as write_pass.
def _verify(
    dev: BlockDevice,
    pattern: Pattern,
    pass_index: int,
    items: list[tuple[int, int]],
    *,
    block_size: int,
    on_progress: Callable[[Progress], None],
    cancel: threading.Event | None,
    absolute: bool,
) -> VerifyOutcome:
    sector = dev.logical_sector_size
    total = sum(n for _, n in items)
    src = PatternSource(pattern, chunk=COMPARE_CHUNK)
    # The expected bytes are made and compared in small chunks that stay in the CPU cache, so the
    # only trip to memory is the read buffer itself (a 4 MiB expected buffer would double the
    # memory traffic, which is what limits a fast device).
    expected = _Slot(COMPARE_CHUNK)
    mism = _RangeList("verify", sector)
    rerr = _RangeList("read", sector)
    reporter = _Reporter("verify", pass_index, dev.size if absolute else total, on_progress)
    checked = 0
    done = 0
    cancelled = False

    def produce(off: int, n: int, slot: _Slot) -> None:
        dev.pread_into(slot.view[:n], off)

    def compare(off: int, n: int, addr: int) -> None:
        """Compare the ``n`` bytes at ``addr`` with the expected content of [off, off + n)."""
        nonlocal checked
        pos = 0
        while pos < n:
            ln = min(COMPARE_CHUNK, n - pos)
            tag = src.content_tag(off + pos, ln)
            if tag is None or tag != expected.tag:
                expected.tag = None
                src.fill(off + pos, expected.view[:ln])
                expected.tag = tag
            if _memcmp(addr + pos, expected.addr, ln) != 0:
                for i in range(0, ln, sector):
                    sl = min(sector, ln - i)
                    if _memcmp(addr + pos + i, expected.addr + i, sl) != 0:
                        mism.add(off + pos + i, sl)
            pos += ln
        checked += n

    reporter.report(items[0][0] if absolute and items else 0, force=True)
    with _Pipeline(items, produce, block_size, depth=3) as pipe:
        for off, n, slot, perr in pipe:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if perr is None:
                compare(off, n, slot.addr)
            else:
                _raise_if_gone(dev, perr)
                spans = _retry_sectors(dev, dev.pread_into, slot.view[:n], off, rerr)
                if not spans:
                    _check_still_there(dev, perr)
                for s_off, s_len in spans:
                    compare(s_off, s_len, slot.addr + (s_off - off))
            done = off + n if absolute else done + n
            reporter.report(done, errors=(*rerr.items[:50], *mism.items[:50]))
    if absolute and not cancelled:
        done = dev.size
    reporter.report(done, force=True, errors=(*rerr.items[:50], *mism.items[:50]))
    return VerifyOutcome(
        bytes_checked=checked,
        bytes_total=total,
        mismatches=mism.tuple(),
        mismatch_count=mism.sectors,
        read_errors=rerr.tuple(),
        read_error_count=rerr.sectors,
        cancelled=cancelled,
    )


def verify_full(
    dev: BlockDevice,
    pattern: Pattern,
    pass_index: int,
    *,
    block_size: int = DEFAULT_BLOCK,
    on_progress: Callable[[Progress], None],
    cancel: threading.Event | None = None,
) -> VerifyOutcome:
    """Read every byte of the device (O_DIRECT) and compare it with what ``pattern`` wrote."""
    bs = _block_size(dev, block_size)
    items = list(_blocks(0, dev.size, bs))
    return _verify(
        dev,
        pattern,
        pass_index,
        items,
        block_size=bs,
        on_progress=on_progress,
        cancel=cancel,
        absolute=True,
    )


def verify_sample(
    dev: BlockDevice,
    pattern: Pattern,
    pass_index: int,
    *,
    ranges: Sequence[tuple[int, int]],
    block_size: int = DEFAULT_BLOCK,
    on_progress: Callable[[Progress], None],
    cancel: threading.Event | None = None,
) -> VerifyOutcome:
    """Read back only ``ranges`` (e.g. :func:`erase.sampling.sample_plan`) and compare them.

    Progress ``done``/``total`` count sampled bytes.  Ranges must be sorted, non-overlapping, start on
    a logical sector and lie inside the device.
    """
    bs = _block_size(dev, block_size)
    sector = dev.logical_sector_size
    items: list[tuple[int, int]] = []
    prev_end = 0
    for off, ln in ranges:
        if off < prev_end or ln <= 0 or off + ln > dev.size or off % sector:
            raise ValueError(
                f"sample range ({off}, {ln}) is unsorted, overlapping, empty, unaligned or outside the device"
            )
        if ln % sector and off + ln != dev.size:
            raise ValueError(f"sample range ({off}, {ln}) does not end on a sector boundary")
        prev_end = off + ln
        items.extend(_blocks(off, off + ln, bs))
    return _verify(
        dev,
        pattern,
        pass_index,
        items,
        block_size=bs,
        on_progress=on_progress,
        cancel=cancel,
        absolute=False,
    )
