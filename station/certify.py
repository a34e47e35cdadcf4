"""Turn a finished job's journal into its signed certificate (and PDF).

The certificate is a function of the journal: :func:`certify_job` derives the job record from the
journal alone, so it can run in the worker at the end of the job, or later from ``station
certify JOB`` after a crash.  It is idempotent per job: ``certificate.json`` in the job directory
points at the issued files and a second call returns them instead of issuing a duplicate.

The station key is created on first use by :func:`ensure_station_key`, before any worker starts
(mode 0600, never printed); settings (technician,
organisation, destination, ...) come from the ``[certificate]`` table of the settings file.
"""

from __future__ import annotations

import json
from pathlib import Path

from certs.build import record_sha256
from certs.errors import CertError
from certs.issue import issue_certificate
from certs.jws import parse_envelope
from certs.keys import init_station_key, station_id_default
from certs.settings import CertSettings
from diagnostics.health import drive_health
from erase.journal import derive
from erase.purge.machine import current_machine
from host import paths
from host.fsio import atomic_write
from station.options import WorkerOptions
from station.sync.outbox import enqueue_certificate

CERTIFICATE_INDEX = "certificate.json"


def _settings(options: WorkerOptions) -> CertSettings:
    path = Path(options.settings) if options.settings else paths.settings_file()
    if options.settings or path.exists():
        return CertSettings.load(path)
    return CertSettings(language=options.lang if options.lang in ("en", "fr") else "en")


def _language(options: WorkerOptions, settings: CertSettings) -> str:
    """The certificate's language: asked for explicitly, else the settings file's."""
    return options.lang if options.lang in ("en", "fr") else settings.language


def _health(device_path: str, transport: str) -> dict[str, object] | None:
    """SMART summary for real drives; loop devices have none (and none is claimed)."""
    if transport == "loop":
        return None
    # The same machine the job ran on: the real one, or a recorded one (TABULA_REPLAY_MACHINE).
    return drive_health(device_path, current_machine().runner).to_dict()


def _already_issued(cert_dir: Path, job_id: str, record_digest: str) -> list[Path] | None:
    """The files of a certificate already issued for this exact record, if any."""
    if not cert_dir.is_dir():
        return None
    for path in cert_dir.glob("*.json"):
        try:
            payload = json.loads(parse_envelope(path.read_bytes()).payload_bytes)
        except (CertError, ValueError, OSError):
            continue  # not a certificate of ours (or a broken file): `station verify` reports those
        job = payload.get("job", {}) if isinstance(payload, dict) else {}
        if job.get("job_id") == job_id and job.get("record_sha256") == record_digest:
            return [path, path.with_suffix(".pdf")]
    return None


def ensure_station_key(key_dir: Path) -> None:
    """Create the station key on first use.  Call it once, before workers start (never concurrently)."""
    if not (key_dir / "station.key").exists():
        init_station_key(key_dir, station_id_default())


def certify_job(job_dir: Path, options: WorkerOptions) -> list[Path]:
    index = job_dir / CERTIFICATE_INDEX
    record = derive(job_dir).record()
    digest = record_sha256(record)
    if index.exists():
        issued_for = json.loads(index.read_text())
        if issued_for.get("record_sha256") == digest:
            return [Path(p) for p in issued_for["paths"]]
        # The job went on since (an interrupted job was resumed): its old certificate, kept in the
        # chain as history, no longer describes it.  A new one is issued for the current record.
    cert_dir = Path(options.cert_dir) if options.cert_dir else paths.certs_dir()
    already = _already_issued(cert_dir, record.plan.job_id, digest)
    if already is not None:
        # A crash between signing and writing the index: reuse it, never a second certificate.
        enqueue_certificate(already[0], home=paths.home())
        atomic_write(
            index,
            json.dumps(
                {"paths": [str(p) for p in already], "record_sha256": digest, "recovered": True}
            ).encode(),
        )
        return already
    key_dir = Path(options.key_dir) if options.key_dir else paths.keys_dir()
    drive = record.plan.drive
    settings = _settings(options)
    issued = issue_certificate(
        record,
        key_dir=key_dir,
        cert_dir=cert_dir,
        settings=settings,
        health=_health(drive.path, drive.transport),
        lang=_language(options, settings),
    )
    # Into the sync outbox in the same step, before the job's index says it is done: a crash
    # between the two is repaired by `station sync`, which also queues certificates it finds.
    enqueue_certificate(issued.json_path, home=paths.home())
    files = [issued.json_path, issued.pdf_path]
    atomic_write(
        index,
        json.dumps(
            {
                "certificate_id": issued.certificate_id,
                "sequence": issued.sequence,
                "digest": issued.digest,
                "verified_success": issued.verified_success,
                "record_sha256": digest,
                "paths": [str(p) for p in files],
            },
            indent=2,
        ).encode(),
    )
    return files
