"""Quick hardware tests: CPU, RAM, drive sequential read, battery.

Every test is bounded (seconds and/or bytes) and cancellable through a ``threading.Event``, and
returns a :class:`TestResult` whose status is ``pass``, ``fail`` or ``unknown`` (could not be
measured, or cancelled before any verdict), with the numbers it measured.

* CPU: every core hashes a fixed buffer with SHA-256 (hashlib releases the GIL on large buffers,
  so threads load all cores) and compares each digest with a known answer.  A wrong digest is a
  computation error: fail.  Throttling (kernel throttle counters, frequency drop) and temperature
  (hwmon via psutil) are reported when the machine exposes them, ``None`` otherwise.
* RAM: a chosen amount of anonymous memory is written with fixed patterns, walking ones and
  walking zeros, and each cell's own address, then read back and compared.
* Drive read: O_DIRECT sequential reads (the device is opened read-only; nothing is ever written),
  bounded by bytes and seconds.
* Battery: samples the charge level and state twice and checks they are consistent.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil  # type: ignore[import-untyped,unused-ignore]  # no stubs in the base install

from diagnostics.errors import BoundsError

TestStatus = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class TestResult:
    """One test's outcome, with its numbers.  ``reason`` says why in plain words."""

    __test__ = False  # not a pytest test class

    name: str
    status: TestStatus
    reason: str
    duration: float
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "duration": round(self.duration, 3),
            "numbers": dict(self.numbers),
        }


# --------------------------------------------------------------------------- CPU

CPU_BLOCK = bytes(range(256)) * 4096  # 1 MiB, fixed
# sha256 of CPU_BLOCK: the known answer every core must reproduce.
CPU_BLOCK_SHA256 = "fbbab289f7f94b25736c58be46a994c441fd02552cc6022352e3d86d2fab7c83"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _throttle_counts(sys_root: Path) -> int | None:
    total = 0
    found = False
    for p in (sys_root / "devices" / "system" / "cpu").glob("cpu[0-9]*/thermal_throttle/*_throttle_count"):
        try:
            total += int(p.read_text().strip())
            found = True
        except (OSError, ValueError):
            continue
    return total if found else None


def _cur_freqs_mhz(sys_root: Path) -> list[float]:
    out = []
    for p in (sys_root / "devices" / "system" / "cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            out.append(int(p.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return out


def _max_freq_mhz(sys_root: Path) -> float | None:
    p = sys_root / "devices" / "system" / "cpu" / "cpu0" / "cpufreq" / "cpuinfo_max_freq"
    try:
        return int(p.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def _cpu_temperature() -> float | None:
    read = getattr(psutil, "sensors_temperatures", None)
    if read is None:
        return None
    temps = read()
    preferred = [temps[k] for k in ("coretemp", "k10temp", "zenpower", "cpu_thermal", "acpitz") if k in temps]
    entries = [e for group in (preferred or list(temps.values())) for e in group]
    values = [e.current for e in entries if e.current is not None and 0 < e.current < 150]
    return max(values) if values else None


def cpu_test(
    *,
    seconds: float = 5.0,
    threads: int | None = None,
    cancel: threading.Event | None = None,
    sys_root: Path = Path("/sys"),
    compute: Callable[[bytes], str] = _sha256,
    max_errors_kept: int = 10,
) -> TestResult:
    """Load every core for ``seconds``, checking each SHA-256 against the known answer.

    ``compute`` is the hash function under test (a fault can be injected there in tests).
    """
    if seconds <= 0:
        raise BoundsError("the CPU test needs a positive duration")
    cancel = cancel or threading.Event()
    n = threads or os.cpu_count() or 1
    start = time.monotonic()
    deadline = start + seconds
    counts = [0] * n
    errors: list[str] = []
    lock = threading.Lock()
    throttle_before = _throttle_counts(sys_root)
    temps: list[float] = []
    freqs: list[float] = []
    temp0 = _cpu_temperature()
    if temp0 is not None:
        temps.append(temp0)

    def work(i: int) -> None:
        # Each thread checks at least one result, even when it starts after the deadline (a loaded
        # machine may start threads late): a short test is short, never empty.
        while not cancel.is_set() and (counts[i] == 0 or time.monotonic() < deadline):
            digest = compute(CPU_BLOCK)
            counts[i] += 1
            if digest != CPU_BLOCK_SHA256:
                with lock:
                    if len(errors) < max_errors_kept:
                        errors.append(f"thread {i} iteration {counts[i]}: got {digest[:16]}...")
                    else:
                        errors.append("")

    workers = [threading.Thread(target=work, args=(i,), name=f"cpu-test-{i}", daemon=True) for i in range(n)]
    for w in workers:
        w.start()
    _watch_cpu(workers, cancel, deadline, sys_root, temps, freqs)
    duration = time.monotonic() - start
    total = sum(counts)
    numbers: dict[str, Any] = {
        "threads": n,
        "hashes": total,
        "mib_per_second": round(total / duration, 1) if duration > 0 else None,
        "errors": len(errors),
        "error_samples": [e for e in errors if e],
        "max_temperature_c": max(temps) if temps else None,
        "throttle_events": _delta(throttle_before, _throttle_counts(sys_root)),
        "max_freq_mhz": _max_freq_mhz(sys_root),
        "min_freq_under_load_mhz": min(freqs) if freqs else None,
    }
    return _cpu_result(numbers, cancelled=cancel.is_set(), duration=duration)


def _watch_cpu(
    workers: list[threading.Thread],
    cancel: threading.Event,
    deadline: float,
    sys_root: Path,
    temps: list[float],
    freqs: list[float],
) -> None:
    """While the workers hash: sample the temperature and the clock, then wait for them to stop."""
    while any(w.is_alive() for w in workers):
        if cancel.wait(min(0.5, max(0.01, deadline - time.monotonic()))):
            break
        t = _cpu_temperature()
        if t is not None:
            temps.append(t)
        freqs.extend(_cur_freqs_mhz(sys_root))
    for w in workers:
        w.join()


def _delta(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None


def _cpu_result(numbers: dict[str, Any], *, cancelled: bool, duration: float) -> TestResult:
    errors, total, n = numbers["errors"], numbers["hashes"], numbers["threads"]
    if errors:
        return TestResult("cpu", "fail", f"{errors} wrong SHA-256 results under load", duration, numbers)
    if cancelled:
        return TestResult("cpu", "unknown", "cancelled before the end", duration, numbers)
    if total == 0:
        return TestResult("cpu", "unknown", "no computation finished in the time given", duration, numbers)
    why = f"{total} SHA-256 results on {n} threads, all correct"
    if numbers["throttle_events"]:
        why += f"; {numbers['throttle_events']} thermal throttling events"
    return TestResult("cpu", "pass", why, duration, numbers)


# --------------------------------------------------------------------------- RAM

_WORD = 8


def _patterns() -> list[tuple[str, bytes | None]]:
    """(name, 8-byte pattern); None means "each 8-byte word holds its own index"."""
    pats: list[tuple[str, bytes | None]] = [
        ("zeros", b"\x00" * 8),
        ("ones", b"\xff" * 8),
        ("checker-55", b"\x55" * 8),
        ("checker-aa", b"\xaa" * 8),
    ]
    for bit in range(8):
        pats.append((f"walking-one-{bit}", bytes([1 << bit]) * 8))
    for bit in range(8):
        pats.append((f"walking-zero-{bit}", bytes([0xFF ^ (1 << bit)]) * 8))
    pats.append(("address", None))
    return pats


def ram_test(
    size_bytes: int,
    *,
    seconds: float = 30.0,
    cancel: threading.Event | None = None,
    chunk: int = 1 << 20,
    tamper: Callable[[mmap.mmap, str], None] | None = None,
    max_errors_kept: int = 10,
) -> TestResult:
    """Write patterns into ``size_bytes`` of fresh anonymous memory, read back, compare.

    Refuses (BoundsError) to take more than half of the memory available now.  ``tamper`` is
    called after each pattern is written and before it is read back (fault injection for tests).
    """
    if size_bytes < chunk or size_bytes % _WORD:
        raise BoundsError(f"the RAM test needs at least {chunk} bytes, a multiple of {_WORD}")
    available = psutil.virtual_memory().available
    if size_bytes > available // 2:
        raise BoundsError(
            f"asked to test {size_bytes >> 20} MiB but only {available >> 20} MiB are available",
            hint="test at most half of the available memory",
        )
    cancel = cancel or threading.Event()
    size_bytes -= size_bytes % chunk
    start = time.monotonic()
    deadline = start + seconds
    found = _Mismatches(max_errors_kept)
    done: list[str] = []
    buf = mmap.mmap(-1, size_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    stopped = ""
    try:
        for name, pattern in _patterns():
            stopped = (
                "cancelled"
                if cancel.is_set()
                else "time bound reached"
                if time.monotonic() > deadline
                else ""
            )
            if stopped:
                break
            for off in range(0, size_bytes, chunk):
                buf[off : off + chunk] = _expected(pattern, off, chunk)
            if tamper is not None:
                tamper(buf, name)
            for off in range(0, size_bytes, chunk):
                found.compare(name, off, buf[off : off + chunk], _expected(pattern, off, chunk))
            done.append(name)
    finally:
        buf.close()
    duration = time.monotonic() - start
    numbers: dict[str, Any] = {
        "bytes": size_bytes,
        "patterns_done": len(done),
        "patterns_total": len(_patterns()),
        "bad_bytes": found.bad_bytes,
        "error_samples": found.samples,
        "mib_per_second": round(2 * len(done) * size_bytes / (1 << 20) / duration, 1)
        if duration > 0
        else None,
    }
    return _ram_result(numbers, stopped, duration)


def _expected(pattern: bytes | None, off: int, chunk: int) -> bytes:
    """What a chunk holds under ``pattern`` (None: each 8-byte word holds its own index)."""
    words = chunk // _WORD
    if pattern is None:
        first = off // _WORD
        return array("Q", range(first, first + words)).tobytes()
    return pattern * words


@dataclass
class _Mismatches:
    keep: int
    bad_bytes: int = 0
    samples: list[str] = field(default_factory=list)

    def compare(self, name: str, off: int, got: bytes, expected: bytes) -> None:
        if got == expected:
            return
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            if a != b:
                self.bad_bytes += 1
                if len(self.samples) < self.keep:
                    self.samples.append(f"{name}: offset {off + i:#x} read {a:#04x} expected {b:#04x}")


def _ram_result(numbers: dict[str, Any], stopped: str, duration: float) -> TestResult:
    bad, done, total, size = (
        numbers["bad_bytes"],
        numbers["patterns_done"],
        numbers["patterns_total"],
        numbers["bytes"],
    )
    if bad:
        return TestResult("ram", "fail", f"{bad} bytes read back wrong", duration, numbers)
    if stopped and not done:
        return TestResult("ram", "unknown", f"{stopped} before any pattern completed", duration, numbers)
    if stopped:
        return TestResult(
            "ram",
            "pass" if stopped == "time bound reached" else "unknown",
            f"{done} of {total} patterns over {size >> 20} MiB correct; {stopped}",
            duration,
            numbers,
        )
    return TestResult("ram", "pass", f"all {done} patterns over {size >> 20} MiB correct", duration, numbers)


# --------------------------------------------------------------------------- drive read


def _read_ahead(
    fd: int, limit: int, block: int, cancel: threading.Event, deadline: float
) -> tuple[int, str | None]:
    """Read sequentially up to ``limit`` bytes (or the deadline); bytes read, and the read error if any."""
    buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
    done = 0
    try:
        while done < limit and not cancel.is_set() and time.monotonic() < deadline:
            view = memoryview(buf)[: min(block, limit - done)]
            try:
                n = os.preadv(fd, [view], done)
            except OSError as exc:
                return done, f"read error at offset {done}: {exc.strerror}"
            finally:
                view.release()
            if n <= 0:
                break
            done += n
    finally:
        buf.close()
    return done, None


def drive_read_test(
    path: str,
    *,
    max_bytes: int = 256 << 20,
    seconds: float = 10.0,
    block: int = 1 << 20,
    cancel: threading.Event | None = None,
) -> TestResult:
    """Sequential O_DIRECT read from offset 0, bounded by ``max_bytes`` and ``seconds``.  Read only."""
    if max_bytes <= 0 or seconds <= 0 or block % 4096:
        raise BoundsError("the read test needs positive bounds and a block that is a multiple of 4096")
    cancel = cancel or threading.Event()
    name = f"read:{path}"
    start = time.monotonic()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as exc:
        return TestResult(name, "unknown", f"cannot open for reading: {exc.strerror}", 0.0, {"device": path})
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        done, error = _read_ahead(fd, min(max_bytes, size - size % 4096), block, cancel, start + seconds)
    finally:
        os.close(fd)
    duration = time.monotonic() - start
    rate = done / duration / 1e6 if duration > 0 else None
    numbers: dict[str, Any] = {
        "device": path,
        "bytes_read": done,
        "mb_per_second": round(rate, 1) if rate is not None else None,
        "size_bytes": size,
    }
    if error is not None:
        return TestResult(name, "fail", error, duration, numbers)
    if done == 0:
        why = "cancelled" if cancel.is_set() else "nothing could be read"
        return TestResult(name, "unknown", why, duration, numbers)
    return TestResult(name, "pass", f"read {done >> 20} MiB at {rate:.1f} MB/s", duration, numbers)


# --------------------------------------------------------------------------- battery


def _battery_dirs(sys_root: Path) -> list[Path]:
    base = sys_root / "class" / "power_supply"
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(base.iterdir()):
        try:
            kind = (entry / "type").read_text().strip()
        except OSError:
            continue
        if kind == "Battery":
            out.append(entry)
    return out


def _sample(entry: Path) -> dict[str, Any]:
    def rd(name: str) -> str | None:
        try:
            return (entry / name).read_text().strip()
        except OSError:
            return None

    def num(name: str) -> int | None:
        v = rd(name)
        try:
            return int(v) if v is not None else None
        except ValueError:
            return None

    now = num("energy_now")
    unit = "uWh"
    if now is None:
        now, unit = num("charge_now"), "uAh"
    return {
        "status": rd("status"),
        "capacity_percent": num("capacity"),
        "now": now,
        "unit": unit,
        "power_uw": num("power_now"),
        "current_ua": num("current_now"),
        "ac_online": None,
    }


def _ac_online(sys_root: Path) -> bool | None:
    base = sys_root / "class" / "power_supply"
    if not base.is_dir():
        return None
    seen = None
    for entry in base.iterdir():
        try:
            if (entry / "type").read_text().strip() == "Mains":
                seen = (entry / "online").read_text().strip() == "1" or bool(seen)
        except OSError:
            continue
    return seen


def _battery_problems(name: str, a: dict[str, Any], b: dict[str, Any], ac: bool | None) -> list[str]:
    """What two samples of a battery say against each other, and against the charger."""
    problems = []
    status, level = b["status"], b["capacity_percent"]
    if a["capacity_percent"] is not None and level is not None:
        moved = level - a["capacity_percent"]
        if status == "Charging" and moved < -1:
            problems.append(f"{name}: reports Charging but its level fell by {-moved} %")
        if status == "Discharging" and moved > 1:
            problems.append(f"{name}: reports Discharging but its level rose by {moved} %")
    if status == "Discharging" and ac is True:
        problems.append(f"{name}: discharging while the charger is online (charger or battery fault)")
    if status in (None, "Unknown") and not level:
        problems.append(f"{name}: no charge state and no level reported")
    return problems


def battery_test(
    *,
    seconds: float = 2.0,
    sys_root: Path = Path("/sys"),
    cancel: threading.Event | None = None,
) -> TestResult:
    """Sample each battery twice, ``seconds`` apart, and check charge state and level agree.

    fail: the level moves against the reported state (charging while it drops, by more than 1 %),
    or the battery reports "Unknown" state with no charge.  unknown: no battery, or cancelled.
    """
    cancel = cancel or threading.Event()
    start = time.monotonic()
    dirs = _battery_dirs(sys_root)
    if not dirs:
        return TestResult("battery", "unknown", "no battery found", 0.0, {"batteries": 0})
    first = {d.name: _sample(d) for d in dirs}
    if cancel.wait(seconds):
        return TestResult(
            "battery", "unknown", "cancelled", time.monotonic() - start, {"batteries": len(dirs)}
        )
    second = {d.name: _sample(d) for d in dirs}
    ac = _ac_online(sys_root)
    problems: list[str] = []
    per: dict[str, Any] = {}
    for name, a in first.items():
        b = second[name]
        delta = b["now"] - a["now"] if a["now"] is not None and b["now"] is not None else None
        per[name] = {
            "status": b["status"],
            "capacity_percent": b["capacity_percent"],
            "delta": delta,
            "unit": b["unit"],
            "power_uw": b["power_uw"],
            "current_ua": b["current_ua"],
        }
        problems.extend(_battery_problems(name, a, b, ac))
    numbers: dict[str, Any] = {"batteries": len(dirs), "ac_online": ac, "per_battery": per}
    duration = time.monotonic() - start
    if problems:
        return TestResult("battery", "fail", "; ".join(problems), duration, numbers)
    states = ", ".join(f"{n}: {p['status']} at {p['capacity_percent']} %" for n, p in per.items())
    return TestResult("battery", "pass", states, duration, numbers)
