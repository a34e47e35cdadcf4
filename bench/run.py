#!/usr/bin/env python3
"""Throughput benchmark: Tabula's engine against dd (and nwipe if installed) on tmpfs-backed loops.

Run as root from the repository root, e.g.::

    python3 bench/run.py --size 1G --drives 1,8

For each drive count N it creates N files in /dev/shm, attaches a loop device to each (only those,
detached at the end), and times, with one process per drive (as the station's worker runs):
(``--backing DIR`` puts the files on DIR's filesystem instead and attaches the loops with direct I/O,
so the "drive" runs at the speed of the disk under DIR, not of memory.)

* ``dd if=/dev/zero of=LOOP bs=16M oflag=direct``       vs the engine's zero pass
* the same dd                                              vs the engine's prng (AES-CTR) pass
* ``dd if=LOOP of=/dev/null bs=16M iflag=direct``        vs the engine's verify_full (of the prng pass)
* ``nwipe --autonuke --nogui --method=zero --verify=off --noblank`` when nwipe is installed

Each figure is the best of ``--repeat`` runs (the machine may be shared).  Aggregate GB/s is
N x size / wall time from the first start to the last end.  A table is printed and the results
are written as JSON to bench/results/.  Targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGETS = {
    "zero_vs_dd": 1.0,
    "prng_vs_dd_zero": 0.9,
    "verify_vs_dd_read": 0.8,
}
TARGET_PARALLEL = 0.85  # N drives: engine zero vs dd zero on the same N drives


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().rstrip("B").rstrip("I")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


# --------------------------------------------------------------------------- worker (one per drive)
def worker(op: str, pattern_name: str, dev_path: str, block: int) -> None:
    """Wait for 'go' on stdin, run one engine operation, print timing as JSON."""
    from erase.blockdev import BlockDevice
    from erase.engine import verify_full, write_pass
    from erase.methods import expand
    from erase.model import Progress

    (pattern,) = expand(pattern_name, seed=b"tabula-benchmark-seed-0000000000")

    def progress(p: Progress) -> None:
        pass

    with BlockDevice.open(dev_path, write=(op == "write")) as dev:
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.time()
        if op == "write":
            out = write_pass(dev, pattern, 0, block_size=block, on_progress=progress, checkpoint_seconds=5.0)
            ok = out.completed and not out.bad_ranges
        else:
            v = verify_full(dev, pattern, 0, block_size=block, on_progress=progress)
            ok = v.passed
        t1 = time.time()
        print(json.dumps({"start": t0, "end": t1, "bytes": dev.size, "ok": ok}), flush=True)


# --------------------------------------------------------------------------- timing helpers
def run_parallel_commands(argvs: list[list[str]]) -> float:
    """Start all commands at once; return wall seconds until the last one ends (each must succeed)."""
    t0 = time.monotonic()
    procs = [subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for a in argvs]
    for p, a in zip(procs, argvs, strict=True):
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(a)} failed ({p.returncode}): {err.decode(errors='replace')}")
    return time.monotonic() - t0


def run_parallel_engine(op: str, pattern: str, loops: list[str], block: int) -> float:
    """One engine process per drive, started together; wall time from first start to last end."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker-op", op, "--pattern", pattern]
    procs = [
        subprocess.Popen(
            [*argv, "--dev", d, "--block", str(block)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for d in loops
    ]
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"engine worker did not start: {line!r}")
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"engine worker failed with {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    if not all(r["ok"] for r in results):
        raise RuntimeError(f"engine {op} {pattern} did not succeed: {results}")
    return float(max(r["end"] for r in results) - min(r["start"] for r in results))


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


# --------------------------------------------------------------------------- one configuration
def bench_config(
    n: int, size: int, block: int, repeat: int, with_nwipe: bool, backing: Path | None = None
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="tabula-bench-", dir=str(backing or "/dev/shm")))
    # On a disk, the loop must bypass the backing file's page cache, or it runs at memory speed.
    direct = ["--direct-io=on"] if backing is not None else []
    loops: list[str] = []
    try:
        for i in range(n):
            f = workdir / f"disk{i}.img"
            with open(f, "wb") as fh:
                os.posix_fallocate(fh.fileno(), 0, size)
            out = subprocess.run(
                ["losetup", "--find", "--show", *direct, str(f)], check=True, capture_output=True, text=True
            )
            loops.append(out.stdout.strip())
        count = size // (16 << 20)
        if count * (16 << 20) != size:
            raise SystemExit("--size must be a multiple of 16 MiB (dd uses bs=16M)")
        dd_zero = [
            ["dd", "if=/dev/zero", f"of={d}", "bs=16M", f"count={count}", "oflag=direct"] for d in loops
        ]
        dd_read = [
            ["dd", f"if={d}", "of=/dev/null", "bs=16M", f"count={count}", "iflag=direct"] for d in loops
        ]
        total = n * size

        run_parallel_commands(dd_zero)  # warm-up: every page of the tmpfs files exists from here on
        r: dict[str, Any] = {
            "drives": n,
            "size_per_drive": size,
            "block": block,
            "backing": str(backing) if backing is not None else "tmpfs (/dev/shm)",
        }
        r["dd_zero_s"] = best_of(repeat, lambda: run_parallel_commands(dd_zero))
        r["engine_zero_s"] = best_of(repeat, lambda: run_parallel_engine("write", "zero", loops, block))
        r["engine_prng_s"] = best_of(repeat, lambda: run_parallel_engine("write", "prng", loops, block))
        r["dd_read_s"] = best_of(repeat, lambda: run_parallel_commands(dd_read))
        r["engine_verify_prng_s"] = best_of(
            repeat, lambda: run_parallel_engine("verify", "prng", loops, block)
        )
        run_parallel_engine("write", "zero", loops, block)  # zeros back on the drives, untimed
        r["engine_verify_zero_s"] = best_of(
            repeat, lambda: run_parallel_engine("verify", "zero", loops, block)
        )
        if with_nwipe:
            nw = [
                "nwipe",
                "--autonuke",
                "--nogui",
                "--method=zero",
                "--verify=off",
                "--noblank",
                "--logfile=" + str(workdir / "nwipe.log"),
                *loops,
            ]
            r["nwipe_zero_s"] = run_parallel_commands([nw])
        for k in [k for k in r if k.endswith("_s")]:
            r[k[:-2] + "_gbps"] = total / r[k] / 1e9
        r["ratio_zero_vs_dd"] = r["dd_zero_s"] / r["engine_zero_s"]
        r["ratio_prng_vs_dd_zero"] = r["dd_zero_s"] / r["engine_prng_s"]
        r["ratio_verify_vs_dd_read"] = r["dd_read_s"] / r["engine_verify_prng_s"]
        r["ratio_verify_zero_vs_dd_read"] = r["dd_read_s"] / r["engine_verify_zero_s"]
        if "nwipe_zero_s" in r:
            r["ratio_nwipe_vs_dd"] = r["dd_zero_s"] / r["nwipe_zero_s"]
        return r
    finally:
        for d in loops:
            subprocess.run(["losetup", "--detach", d], check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [
        ("dd zero (16M, O_DIRECT)", "dd_zero"),
        ("engine zero", "engine_zero"),
        ("engine prng (AES-128-CTR)", "engine_prng"),
        ("dd read (16M, O_DIRECT)", "dd_read"),
        ("engine verify_full (prng)", "engine_verify_prng"),
        ("engine verify_full (zero)", "engine_verify_zero"),
        ("nwipe zero", "nwipe_zero"),
    ]
    head = f"{'aggregate GB/s':28}" + "".join(f"{str(r['drives']) + ' drive(s)':>14}" for r in results)
    print(head)
    print("-" * len(head))
    for label, key in rows:
        if any(key + "_gbps" in r for r in results):
            vals = "".join(
                f"{r[key + '_gbps']:>14.2f}" if key + "_gbps" in r else f"{'-':>14}" for r in results
            )
            print(f"{label:28}{vals}")
    print()
    ratios = [
        ("zero / dd zero", "ratio_zero_vs_dd", TARGETS["zero_vs_dd"]),
        ("prng / dd zero", "ratio_prng_vs_dd_zero", TARGETS["prng_vs_dd_zero"]),
        ("verify prng / dd read", "ratio_verify_vs_dd_read", TARGETS["verify_vs_dd_read"]),
        ("verify zero / dd read", "ratio_verify_zero_vs_dd_read", TARGETS["verify_vs_dd_read"]),
        ("nwipe / dd zero", "ratio_nwipe_vs_dd", None),
    ]
    print(f"{'ratio (target)':28}" + "".join(f"{str(r['drives']) + ' drive(s)':>14}" for r in results))
    for label, key, target in ratios:
        if not any(key in r for r in results):
            continue
        tgt = label if target is None else f"{label} (>= {target})"
        if key == "ratio_zero_vs_dd" and len(results) > 1:
            tgt = f"{label} (>= {target}; N: {TARGET_PARALLEL})"
        vals = "".join(f"{r[key]:>14.2f}" if key in r else f"{'-':>14}" for r in results)
        print(f"{tgt:28}{vals}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--size", default="1G", help="bytes per drive, multiple of 16M (default 1G)")
    ap.add_argument("--drives", default="1,8", help="comma-separated drive counts (default 1,8)")
    ap.add_argument("--block", default="4M", help="engine block size (default 4M)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept (default 3)")
    ap.add_argument("--no-nwipe", action="store_true", help="skip nwipe even if installed")
    ap.add_argument(
        "--backing",
        help="directory on a real disk for the loop files (direct-I/O loops: disk speed); default tmpfs",
    )
    ap.add_argument("--out", default=str(REPO / "bench" / "results"), help="directory for the JSON results")
    ap.add_argument("--worker-op", choices=["write", "verify"], help=argparse.SUPPRESS)
    ap.add_argument("--pattern", help=argparse.SUPPRESS)
    ap.add_argument("--dev", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker_op:
        worker(a.worker_op, a.pattern, a.dev, int(a.block))
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/run.py needs root (it creates loop devices)")
    size = parse_size(a.size)
    block = parse_size(a.block)
    drives = [int(x) for x in a.drives.split(",") if x]
    need = size * max(drives)
    backing = Path(a.backing) if a.backing else None
    where = str(backing or "/dev/shm")
    free = shutil.disk_usage(where).free
    if need > free * 0.9:
        raise SystemExit(f"{where} has {free >> 20} MiB free; {need >> 20} MiB needed")
    nwipe = shutil.which("nwipe") is not None and not a.no_nwipe
    results = []
    for n in drives:
        print(f"... {n} drive(s) of {size >> 20} MiB", file=sys.stderr, flush=True)
        results.append(bench_config(n, size, block, a.repeat, nwipe, backing))
    print_table(results)
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "nwipe": subprocess.run(["nwipe", "--version"], capture_output=True, text=True).stdout.strip()
            if nwipe
            else None,
        },
        "targets": {**TARGETS, "parallel_zero_vs_dd": TARGET_PARALLEL},
        "results": results,
    }
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
