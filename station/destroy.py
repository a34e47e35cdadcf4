"""Recording the physical destruction of a drive whose erasure failed (``station destroy``, the TUI).

NIST SP 800-88: media that cannot be sanitized is destroyed.  The technician destroys the drive, then
records it here; the station signs a destruction record (:mod:`certs.destruction`) linked to the failed
job and its signed failure report, writes ``destruction.json`` in the job directory (pointing at the
record's files, like ``certificate.json``), and queues the record for the hub in the same step.

A job that is still running, or that ended verified, cannot be destroyed instead: the first must be
stopped, the second was erased.  A job already recorded as destroyed returns its record (no second one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from certs.destruction import METHODS
from certs.issue import IssuedDestruction, issue_destruction
from erase.journal import derive
from erase.record import Outcome
from host import paths, refs
from host.errors import BadInput
from host.fsio import atomic_write
from station.certify import CERTIFICATE_INDEX, ensure_station_key, settings_for
from station.options import WorkerOptions
from station.sync.outbox import enqueue_destruction

DESTRUCTION_INDEX = "destruction.json"


@dataclass(frozen=True)
class Destroyed:
    record_id: str
    paths: list[Path]  # the signed JSON, then the PDF
    sequence: int
    already: bool = False  # recorded before: nothing new was signed


def recorded(job_dir: Path) -> Destroyed | None:
    """The destruction already recorded for this job, if any."""
    try:
        data = json.loads((job_dir / DESTRUCTION_INDEX).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Destroyed(str(data["record_id"]), [Path(p) for p in data["paths"]], int(data["sequence"]), True)


def _failure_report(job_dir: Path) -> tuple[str, str] | None:
    """(id, SHA-256) of the job's signed failure report, when the worker issued one."""
    try:
        index = json.loads((job_dir / CERTIFICATE_INDEX).read_text())
    except (FileNotFoundError, ValueError):
        return None
    cid, digest = index.get("certificate_id"), index.get("digest")
    if isinstance(cid, str) and isinstance(digest, str) and not index.get("verified_success", False):
        return cid, digest
    return None


def _indexed(job_dir: Path, issued: IssuedDestruction) -> Destroyed:
    """Write ``destruction.json`` (the record's id, number and files) in the job directory."""
    files = [issued.json_path, issued.pdf_path]
    index = {
        "record_id": issued.record_id,
        "sequence": issued.sequence,
        "digest": issued.digest,
        "paths": [str(p) for p in files],
    }
    atomic_write(job_dir / DESTRUCTION_INDEX, json.dumps(index, indent=2).encode())
    return Destroyed(issued.record_id, files, issued.sequence)


def _check_machine(lot: str | None, asset_number: str | None) -> None:
    """The lot and asset number given to replace the job's, checked before anything is signed."""
    if lot:
        refs.check_lot(lot)
    if asset_number:
        refs.check_asset(asset_number)


def destroy_job(
    job_dir: Path,
    *,
    method: str,
    performed_by: str,
    witness: str = "",
    photo: str | None = None,
    destroyed_at: str | None = None,
    notes: str = "",
    lang: str | None = None,
    lot: str | None = None,
    asset_number: str | None = None,
) -> Destroyed:
    """Sign the destruction record of the drive of ``job_dir``; see the module documentation.

    ``lot`` / ``asset_number`` (``--lot`` / ``--asset``) replace the ones the job was planned with.
    """
    _check_machine(lot, asset_number)
    if method not in METHODS:
        raise BadInput(f"unknown destruction method {method!r}", hint="one of: " + ", ".join(METHODS))
    if not performed_by.strip():
        raise BadInput("who destroyed the drive?", hint="give a name (--by NAME)")
    done = recorded(job_dir)
    if done is not None:
        return done
    state = derive(job_dir)
    if state.outcome is Outcome.RUNNING:
        raise BadInput(f"job {state.plan.job_id[:8]} is still running", hint="stop it first (x in the TUI)")
    if state.outcome is Outcome.VERIFIED:
        raise BadInput(
            f"job {state.plan.job_id[:8]} erased and verified the drive: there is nothing to destroy instead",
            hint="a drive that was erased keeps its certificate",
        )
    options = WorkerOptions.load(job_dir)
    settings = settings_for(options)
    key_dir = Path(options.key_dir) if options.key_dir else paths.keys_dir()
    cert_dir = Path(options.cert_dir) if options.cert_dir else paths.certs_dir()
    ensure_station_key(key_dir)
    issued = issue_destruction(
        state.record(),
        key_dir=key_dir,
        cert_dir=cert_dir,
        method=method,
        performed_by=performed_by.strip(),
        witness=witness.strip(),
        destroyed_at=destroyed_at,
        photo=photo,
        notes=notes,
        report=_failure_report(job_dir),
        settings=settings,
        lang=lang if lang in ("en", "fr") else settings.language,
        lot=lot or None,
        asset_number=asset_number or None,
    )
    enqueue_destruction(issued.json_path, home=paths.home())
    return _indexed(job_dir, issued)
