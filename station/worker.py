"""The per-drive worker: one process per drive, driven only by its job directory.

``python -m station.worker JOB_DIR`` reads the plan from the journal, re-checks that the device is
still the planned drive and still safe to erase, then runs (or resumes) the passes and
verifications through the engine, journalling every step.  It never decides an outcome: the
outcome is derived from the journal (:mod:`erase.journal`).  Nothing on the path from the drive to
the journal is swallowed: a typed error ends the job as *failed* with its explanation; SIGTERM /
SIGINT end it as *cancelled* (interrupted); an unexpected exception is journalled as failed and
re-raised (exit code 1).

When the job is over the worker writes ``record.json`` and, when a certificate directory is
configured in ``worker.json``, signs the certificate itself, so nothing depends on the CLI or TUI
still running.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType

from erase.blockdev import BlockDevice
from erase.engine import DriveUnresponsive, verify_full, verify_sample, write_pass
from erase.errors import DriveGone, EraseError
from erase.journal import JobState, Journal, boot_id, derive, process_start, utcnow
from erase.model import Progress, Range
from erase.purge.machine import Machine, current_machine
from erase.purge.planner import PlannedStep
from erase.purge.steps import StepContext, StepsFailed, run_step
from erase.record import JobPlan, VerificationRecord
from erase.sampling import sample_plan
from host.errors import TabulaError
from host.fsio import atomic_write
from station.certify import certify_job
from station.options import EXIT_INTERNAL, RECORD, WorkerOptions, exit_code_for


class JobCancelled(EraseError):
    """The worker was asked to stop (SIGTERM / SIGINT)."""


class WrongDrive(EraseError):
    """The device path now points at another drive than the one planned (names change on replug)."""

    hint = "plan the job again: the drive was replaced or renamed"


class NowProtected(EraseError):
    """The drive became unsafe to erase between planning and execution (mounted, swap, ...)."""


def sample_seed(plan: JobPlan, pass_index: int) -> bytes:
    """The sampling seed of a pass: derived from the job seed, so the same sample can be re-read."""
    return hashlib.sha256(bytes.fromhex(plan.seed) + b"sample" + pass_index.to_bytes(4, "big")).digest()[:16]


def check_still_same_drive(plan: JobPlan, include_loop: bool, machine: Machine | None = None) -> None:
    """Refuse to write unless the device is the planned drive and is still safe to erase."""
    machine = machine or current_machine()
    entry = machine.resolve(plan.drive.path, include_loop=include_loop or plan.drive.transport == "loop")
    now = entry.info
    # A purge plan that removes a hidden area plans for the native size; before (or after) the
    # removal the drive shows its accessible size.
    sizes = {plan.drive.size_bytes}
    if plan.purge is not None:
        sizes.add(int(plan.purge.get("accessible_bytes", plan.drive.size_bytes)))
    if now.identity != plan.drive.identity or now.size_bytes not in sizes:
        raise WrongDrive(
            f"{plan.drive.path} is now {now.identity} ({now.size_bytes} bytes), "
            f"the plan was for {plan.drive.identity} ({plan.drive.size_bytes} bytes)"
        )
    if not entry.allowed:
        raise NowProtected(f"{plan.drive.path} is protected: {'; '.join(entry.reasons)}")


class JobLocked(EraseError):
    """Another worker process already runs this job."""

    hint = "follow it with 'station jobs' or the TUI; resume only a job whose worker has stopped"


def _lock_job(job_dir: Path) -> int:
    fd = os.open(job_dir / "worker.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise JobLocked(f"another worker is already running job {job_dir.name}") from exc
    return fd


class Worker:
    def __init__(
        self, job_dir: Path, options: WorkerOptions | None = None, machine: Machine | None = None
    ) -> None:
        self.job_dir = job_dir
        # One worker per job, for the worker's whole life: two (a double resume, the CLI and the TUI
        # at once) would interleave their journal lines and fight over the drive.
        self._lock = _lock_job(job_dir)
        self.machine = machine or current_machine()
        self.options = options or WorkerOptions.load(job_dir)
        self.cancel = threading.Event()
        self.journal = Journal(job_dir)
        self.state: JobState = derive(job_dir)
        self.plan = self.state.plan
        self._last_progress = 0.0
        self._journalled_bad: set[tuple[int, int, int]] = set()

    # -- signals ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            self.cancel.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- journal helpers ----------------------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        if p.phase == "write":  # verification findings are journalled with the verification itself
            for r in p.errors:
                self._journal_bad(p.pass_index, r)
        now = time.monotonic()
        final = p.done >= p.total
        if p.synced or final or now - self._last_progress >= self.options.progress_interval:
            self._last_progress = now
            self.journal.append(
                "progress",
                **{"pass": p.pass_index},
                phase=p.phase,
                done=p.done,
                total=p.total,
                rate=round(p.rate, 1),
                synced=p.synced,
            )

    def _journal_bad(self, pass_index: int, r: Range) -> None:
        key = (pass_index, r.offset, r.length)
        if key not in self._journalled_bad:
            self._journalled_bad.add(key)
            self.journal.append("bad-range", **{"pass": pass_index}, range=r.to_dict())

    # -- the job ----------------------------------------------------------------------------
    def run(self) -> int:
        if self.state.end_event in ("finished", "failed"):
            raise EraseError(f"job {self.plan.job_id} is already over ({self.state.end_event})")
        pid = os.getpid()
        self.journal.append("worker-started", pid=pid, boot_id=boot_id(), start=process_start(pid))
        try:
            check_still_same_drive(self.plan, self.options.include_loop, self.machine)
            self._run_steps()
            if self.plan.passes:
                if self.plan.purge_steps:
                    # Firmware steps can take hours: the drive may have been swapped or mounted since.
                    check_still_same_drive(self.plan, self.options.include_loop, self.machine)
                self._run_passes()
        except JobCancelled as exc:
            self.journal.append("cancelled", reason=exc.message)
        except DriveUnresponsive as exc:
            self.journal.append(
                "failed",
                reason=f"the drive stopped accepting writes: {exc.message}",
                error=type(exc).__name__,
            )
        except DriveGone as exc:
            self.journal.append(
                "failed", reason=f"the drive disappeared: {exc.message}", error=type(exc).__name__
            )
        except TabulaError as exc:
            self.journal.append("failed", reason=exc.message, error=type(exc).__name__)
        except BaseException as exc:
            self.journal.append(
                "failed",
                reason=f"internal error: {type(exc).__name__}: {exc}",
                error="internal",
                traceback=traceback.format_exc(limit=8),
            )
            raise
        else:
            self.journal.append("finished")
        finally:
            self.journal.close()
        return self.conclude()

    def conclude(self) -> int:
        """Write record.json (and the certificate, when configured) from the journal; return exit code."""
        state = derive(self.job_dir)
        record = state.record()
        atomic_write(self.job_dir / RECORD, json.dumps(record.to_dict(), indent=2).encode())
        if self.options.cert_dir:
            certify_job(self.job_dir, self.options)
        return exit_code_for(record.outcome.value)

    def _run_steps(self) -> None:
        """The plan's firmware and preparation steps, in order; each must bring its evidence."""
        ctx = StepContext(machine=self.machine, drive=self.plan.drive, seed=bytes.fromhex(self.plan.seed))
        for i, raw in enumerate(self.plan.purge_steps):
            done = self.state.steps.get(i)
            if done is not None and done.ok:
                continue  # resumed job: this step already has its evidence
            self._check_cancel()
            step = PlannedStep.from_dict(raw)
            self.journal.append("step-started", step=i, action=step.action)
            result = run_step(step, i, ctx)
            self.journal.append("step-finished", step=i, result=result.to_dict())
            if not result.ok:
                raise StepsFailed(f"step {i + 1} ({step.label}) failed: {result.note}")

    def _run_passes(self) -> None:
        plan = self.plan
        wanted = set(plan.verified_passes())
        with BlockDevice.open(self.machine.data_path(plan.drive), write=True) as dev:
            if dev.size != plan.drive.size_bytes:
                hidden = plan.purge is not None and plan.drive.size_bytes != plan.purge.get(
                    "accessible_bytes"
                )
                raise WrongDrive(
                    f"{plan.drive.path} has {dev.size} bytes, the plan says {plan.drive.size_bytes}"
                    + (" (the native size is still hidden)" if hidden else "")
                )
            for i, pattern in enumerate(plan.passes):
                ps = self.state.passes.get(i)
                done_writing = ps is not None and ps.completed
                if not done_writing:
                    start = ps.resume_offset() if ps is not None else 0
                    self._check_cancel()
                    self.journal.append("pass-started", **{"pass": i}, start=start)
                    outcome = write_pass(
                        dev,
                        pattern,
                        i,
                        start=start,
                        block_size=plan.block_size,
                        on_progress=self._on_progress,
                        cancel=self.cancel,
                        checkpoint_seconds=self.options.checkpoint_seconds,
                        on_error=plan.on_error,
                    )
                    for r in outcome.bad_ranges:
                        self._journal_bad(i, r)
                    if not outcome.completed:
                        self._check_cancel()
                        if plan.on_error == "abort" and outcome.bad_ranges:
                            raise EraseError(
                                f"pass {i + 1} aborted at the first unwritable range "
                                f"(offset {outcome.bad_ranges[0].offset})"
                            )
                        raise EraseError(f"pass {i + 1} stopped before the end")
                    self.journal.append(
                        "pass-finished",
                        **{"pass": i},
                        start=start,
                        written=outcome.bytes_written,
                        completed=True,
                    )
                if i in wanted and i not in self.state.verifications:
                    self._verify(dev, i)

    def _verify(self, dev: BlockDevice, i: int) -> None:
        plan = self.plan
        pattern = plan.passes[i]
        self._check_cancel()
        started = utcnow()
        if plan.verify_mode == "full":
            self.journal.append("verify-started", **{"pass": i}, mode="full", seed=None, planned=dev.size)
            out = verify_full(
                dev, pattern, i, block_size=plan.block_size, on_progress=self._on_progress, cancel=self.cancel
            )
            seed_hex = None
            subsections = None
        else:
            seed = sample_seed(plan, i)
            sp = sample_plan(dev.size, dev.logical_sector_size, seed)
            self.journal.append(
                "verify-started", **{"pass": i}, mode="sample", seed=seed.hex(), planned=sp.covered
            )
            out = verify_sample(
                dev,
                pattern,
                i,
                ranges=list(sp.ranges),
                block_size=plan.block_size,
                on_progress=self._on_progress,
                cancel=self.cancel,
            )
            seed_hex = seed.hex()
            subsections = sp.subsections
        self._check_cancel()
        record = VerificationRecord(
            pass_index=i,
            mode=plan.verify_mode,
            bytes_total=dev.size,
            bytes_checked=out.bytes_checked,
            passed=out.passed,
            started_at=started,
            finished_at=utcnow(),
            seed=seed_hex,
            subsections=subsections,
            mismatch_count=out.mismatch_count,
            mismatches=tuple(out.mismatches),
            read_errors=tuple(out.read_errors),
        )
        self.journal.append("verify-finished", **{"pass": i}, verification=record.to_dict())

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("the job was stopped on request (SIGTERM/SIGINT) before the end")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m station.worker JOB_DIR", file=sys.stderr)
        return EXIT_INTERNAL
    worker = Worker(Path(args[0]))
    worker.install_signal_handlers()
    try:
        return worker.run()
    except TabulaError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
