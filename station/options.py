"""What a job's worker process is told, and what it answers: the contract between the programs that
start jobs (the CLI, the TUI, autorun) and :mod:`station.worker`, which runs them.

* ``worker.json`` in the job directory: :class:`WorkerOptions` (where to sign, in which language);
* ``record.json``: the job record the worker writes when the job is over;
* the worker's exit code, the same as ``station erase``'s (:func:`exit_code_for`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from host.fsio import atomic_write

WORKER_OPTIONS = "worker.json"
RECORD = "record.json"

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_REFUSED = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 4
EXIT_UNVERIFIED = 5  # every pass written, but no verification was asked: not a NIST erasure


def exit_code_for(outcome: str) -> int:
    return {
        "verified": EXIT_OK,
        "unverified": EXIT_UNVERIFIED,
        "failed": EXIT_FAILED,
        "interrupted": EXIT_INTERRUPTED,
    }.get(outcome, EXIT_INTERNAL)


@dataclass(frozen=True)
class WorkerOptions:
    cert_dir: str | None = None
    key_dir: str | None = None
    settings: str | None = None  # path of a certificate settings TOML file
    lang: str = ""  # certificate language; "" = the settings file's language
    include_loop: bool = False
    progress_interval: float = 1.0
    checkpoint_seconds: float = 5.0

    @classmethod
    def load(cls, job_dir: Path) -> WorkerOptions:
        path = job_dir / WORKER_OPTIONS
        if not path.exists():
            return cls()
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, job_dir: Path) -> None:
        atomic_write(job_dir / WORKER_OPTIONS, json.dumps(asdict(self), indent=2).encode())
