"""Planning, starting and following erase jobs.  The CLI and the TUI both use this module.

Plan, show, confirm, then commit: :func:`plan_job` builds a validated :class:`JobPlan` in memory
(unknown methods, bad patterns and protected drives are refused here, before anything is
written); :func:`create_job` writes it as the first line of a new journal; :func:`spawn` starts
one worker process per job (its own session, so it outlives a crashed TUI); :class:`JobWatcher`
follows journals incrementally without ever blocking on a worker.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from certs.limits import check_drive, check_operator
from erase.errors import JournalError
from erase.journal import Follower, JobState, Journal, iter_jobs, utcnow
from erase.methods import expand
from erase.purge.planner import PlanOptions, PurgePlan, plan_purge
from erase.purge.probe import probe
from erase.record import ErrorPolicy, JobPlan, VerifyMode, VerifyPolicy
from host.identity import DriveInfo
from host.runner import Runner
from station import __version__
from station.options import WorkerOptions

DEFAULT_BLOCK_SIZE = 4 << 20


@dataclass(frozen=True)
class EraseOptions:
    method: str = "zero"
    verify: VerifyPolicy = "last"
    verify_mode: VerifyMode = "full"
    rounds: int = 1
    final_blank: bool = False
    custom_hex: str | None = None
    block_size: int = DEFAULT_BLOCK_SIZE
    on_error: ErrorPolicy = "continue"


def plan_job(
    drive: DriveInfo,
    options: EraseOptions,
    *,
    operator: dict[str, str] | None = None,
    purge: PurgePlan | None = None,
) -> JobPlan:
    """A validated plan for one drive.  Raises a typed error for anything that cannot be done.

    With ``purge`` (see :func:`plan_purge_job`), the plan's firmware steps run first; the overwrite
    passes of ``options.method`` follow only when the purge plan overwrites, over the drive's native
    size (after any hidden area is removed).
    """
    # What the certificate will hold is checked now, before anything is written (certs/limits.py).
    check_operator(operator or {})
    d = drive
    check_drive(
        {"manufacturer": d.vendor, "model": d.model, "serial": d.serial, "wwn": d.wwn, "firmware": d.firmware}
    )
    seed = secrets.token_bytes(16)
    passes = expand(
        options.method,
        rounds=options.rounds,
        final_blank=options.final_blank,
        custom_hex=options.custom_hex,
        seed=seed,
    )
    if purge is not None:
        drive = replace(drive, size_bytes=purge.native_bytes)
        if not purge.overwrite:
            passes = []
    return JobPlan(
        job_id=str(uuid.uuid4()),
        created_at=utcnow(),
        drive=drive,
        method=options.method,
        passes=tuple(passes),
        seed=seed.hex(),
        verify=options.verify,
        verify_mode=options.verify_mode,
        block_size=options.block_size,
        rounds=options.rounds,
        final_blank=options.final_blank,
        custom_hex=options.custom_hex,
        on_error=options.on_error,
        tool={"name": "tabula", "version": __version__},
        host={"hostname": socket.gethostname(), "kernel": platform.release()},
        operator=dict(operator or {}),
        purge=purge.to_dict() if purge is not None else None,
    )


def plan_purge_job(
    drive: DriveInfo,
    options: EraseOptions,
    policy: str,
    runner: Runner,
    plan_options: PlanOptions | None = None,
    *,
    operator: dict[str, str] | None = None,
) -> tuple[JobPlan, PurgePlan]:
    """Probe the drive (read-only) and plan ``policy`` (nist-clear / nist-purge) for it."""
    caps = probe(drive, runner)
    passes = len(
        expand(
            options.method,
            rounds=options.rounds,
            final_blank=options.final_blank,
            custom_hex=options.custom_hex,
            seed=bytes(16),
        )
    )
    popts = plan_options or PlanOptions()
    popts = replace(popts, overwrite_passes=passes)
    pplan = plan_purge(drive, caps, policy, popts)
    return plan_job(drive, options, operator=operator, purge=pplan), pplan


def create_job(jobs_root: Path, plan: JobPlan, options: WorkerOptions) -> Path:
    jobs_root.mkdir(parents=True, exist_ok=True)
    with Journal.create(jobs_root, plan) as journal:
        job_dir = journal.job_dir
    options.save(job_dir)
    return job_dir


def spawn(job_dir: Path) -> subprocess.Popen[bytes]:
    """Start the job's worker in its own process and session; its output goes to worker.log."""
    log = open(job_dir / "worker.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return subprocess.Popen(
            [sys.executable, "-m", "station.worker", str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        log.close()


class JobWatcher:
    """Follows many job journals; each poll reads only what was appended.  Never blocks."""

    def __init__(self, job_dirs: Sequence[Path] = ()) -> None:
        self._followers: dict[Path, Follower] = {}
        for d in job_dirs:
            self.add(d)

    def add(self, job_dir: Path) -> None:
        self._followers.setdefault(job_dir, Follower(job_dir))

    def poll(self) -> list[JobState]:
        return [f.poll() for f in self._followers.values()]


def find_jobs(jobs_root: Path) -> list[Path]:
    return list(iter_jobs(jobs_root))


def find_job(jobs_root: Path, job_id: str) -> Path:
    """A job directory from an id, an unambiguous id prefix, or a path."""
    as_path = Path(job_id)
    if (as_path / "journal.jsonl").is_file():
        return as_path
    matches = [d for d in iter_jobs(jobs_root) if d.name.startswith(job_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise JournalError(f"no job '{job_id}' in {jobs_root}", hint="see 'station jobs' for the list")
    raise JournalError(f"'{job_id}' matches {len(matches)} jobs", hint="give more characters of the job id")
