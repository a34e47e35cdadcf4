"""Issue the signed certificate (or failure report) of a finished erase job, and destruction records.

``station erase --cert-dir DIR`` calls :func:`issue_certificate` once per job, whatever its outcome;
``station destroy JOB`` calls :func:`issue_destruction` for a drive that could not be sanitized.
Both take the next number of the station's chain (:mod:`certs.sequence`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs.build import build_certificate, now_utc
from certs.destruction import DestructionRecord, Photo, build_destruction
from certs.fsio import atomic_write
from certs.jws import TYP_CERTIFICATE, TYP_DESTRUCTION, envelope_bytes, sign
from certs.keys import load_installed_endorsement, load_station_key
from certs.model import Certificate, Station, new_certificate_id
from certs.pdf import render_record
from certs.sequence import Sequencer
from certs.settings import CertSettings
from erase.record import JobRecord


@dataclass(frozen=True)
class IssuedCertificate:
    json_path: Path
    pdf_path: Path
    certificate_id: str
    sequence: int
    digest: str  # SHA-256 of the signed record (chain link, QR code)
    verified_success: bool  # True only for a verified erasure; False for every failure report
    certificate: Certificate


def issue_certificate(
    record: JobRecord,
    *,
    key_dir: Path,
    cert_dir: Path,
    settings: CertSettings | None = None,
    health: dict[str, Any] | None = None,
    lang: str = "en",
) -> IssuedCertificate:
    """Sign, number and write ``<id>.json`` and ``<id>.pdf`` for ``record``.

    Failed, interrupted and unverified jobs yield a signed failure report that can never verify as
    a successful erasure.  Raises :class:`~certs.errors.KeyMissing` when the station has no key.
    """
    settings = settings or CertSettings()
    cert_id = new_certificate_id()

    def build(station: Station) -> Certificate:
        return build_certificate(
            record, settings=settings, station=station, health=health, certificate_id=cert_id
        )

    json_path, pdf_path, number, digest, cert = _sign_in_chain(
        build, TYP_CERTIFICATE, key_dir, cert_dir, cert_id, lang
    )
    assert isinstance(cert, Certificate)
    return IssuedCertificate(
        json_path=json_path,
        pdf_path=pdf_path,
        certificate_id=cert_id,
        sequence=number,
        digest=digest,
        verified_success=cert.success,
        certificate=cert,
    )


@dataclass(frozen=True)
class IssuedDestruction:
    json_path: Path
    pdf_path: Path
    record_id: str
    sequence: int
    digest: str
    record: DestructionRecord


def photo_of(path: str | None) -> Photo | None:
    """The photo as the record names it: its path, and its SHA-256 when the file can be read."""
    if not path:
        return None
    try:
        digest: str | None = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        digest = None  # a photo kept elsewhere (a phone): the record names it, without its hash
    return Photo(path=path, sha256=digest)


def issue_destruction(
    record: JobRecord,
    *,
    key_dir: Path,
    cert_dir: Path,
    method: str,
    performed_by: str,
    witness: str = "",
    destroyed_at: str | None = None,
    photo: str | None = None,
    notes: str = "",
    report: tuple[str, str] | None = None,
    settings: CertSettings | None = None,
    lang: str = "en",
    lot: str | None = None,
    asset_number: str | None = None,
) -> IssuedDestruction:
    """Sign, number and write ``<id>.json`` and ``<id>.pdf``: the destruction of the drive of ``record``.

    ``report`` is the failed job's signed failure report (its id and SHA-256), when it has one;
    ``lot`` / ``asset_number`` replace the job's own when given.
    """
    settings = settings or CertSettings()
    record_id = new_certificate_id()

    def build(station: Station) -> DestructionRecord:
        return build_destruction(
            record=record,
            settings=settings,
            station=station,
            method=method,
            performed_by=performed_by,
            witness=witness,
            destroyed_at=destroyed_at or now_utc(),
            photo=photo_of(photo),
            notes=notes,
            report_id=report[0] if report else None,
            report_sha256=report[1] if report else None,
            record_id=record_id,
            issued_at=now_utc(),
            lot=lot,
            asset_number=asset_number,
        )

    json_path, pdf_path, number, digest, built = _sign_in_chain(
        build, TYP_DESTRUCTION, key_dir, cert_dir, record_id, lang
    )
    assert isinstance(built, DestructionRecord)
    return IssuedDestruction(json_path, pdf_path, record_id, number, digest, built)


def _sign_in_chain(
    build: Callable[[Station], Certificate | DestructionRecord],
    typ: str,
    key_dir: Path,
    cert_dir: Path,
    record_id: str,
    lang: str,
) -> tuple[Path, Path, int, str, Certificate | DestructionRecord]:
    """Take the chain's next number, sign the record built for it, and write its JSON and PDF."""
    station_key = load_station_key(key_dir)
    endorsement = load_installed_endorsement(key_dir, station_key)
    claimed = endorsement.envelope.to_json() if endorsement else None
    cert_dir.mkdir(parents=True, exist_ok=True)
    json_path = cert_dir / f"{record_id}.json"
    pdf_path = cert_dir / f"{record_id}.pdf"
    seq = Sequencer(key_dir, station_key.kid, cert_dir)
    with seq.locked() as state:
        number = state.sequence + 1
        built = build(
            Station(id=station_key.name, kid=station_key.kid, sequence=number, previous=state.last_digest)
        )
        env = sign(built.to_dict(), station_key.private, typ, endorsement=claimed)
        signed = envelope_bytes(env)
        pdf = render_record(
            built, env, signed, url=built.verification_url or "", lang=lang
        )  # the signed link
        pending = seq.begin(state, number, env.digest, [pdf_path, json_path])
        atomic_write(pdf_path, pdf, exclusive=True)
        atomic_write(json_path, signed, exclusive=True)
        seq.commit(pending)
    return json_path, pdf_path, number, env.digest, built
