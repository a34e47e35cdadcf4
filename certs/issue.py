"""Issue the signed certificate (or failure report) of a finished erase job.

``station erase --cert-dir DIR`` calls :func:`issue_certificate` once per job, whatever its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs.build import build_certificate
from certs.fsio import atomic_write
from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign
from certs.keys import load_installed_endorsement, load_station_key
from certs.model import Certificate, Station, new_certificate_id
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
    station_key = load_station_key(key_dir)
    endorsement = load_installed_endorsement(key_dir, station_key)
    claimed = endorsement.envelope.to_json() if endorsement else None  # signed into the protected header
    cert_dir.mkdir(parents=True, exist_ok=True)
    cert_id = new_certificate_id()
    json_path = cert_dir / f"{cert_id}.json"
    pdf_path = cert_dir / f"{cert_id}.pdf"
    seq = Sequencer(key_dir, station_key.kid, cert_dir)
    with seq.locked() as state:
        number = state.sequence + 1
        station = Station(
            id=station_key.name, kid=station_key.kid, sequence=number, previous=state.last_digest
        )
        cert = build_certificate(
            record, settings=settings, station=station, health=health, certificate_id=cert_id
        )
        env = sign(cert.to_dict(), station_key.private, TYP_CERTIFICATE, endorsement=claimed)
        signed = envelope_bytes(env)
        # Start-up time: reportlab, pypdf and PIL are a sixth of the station TUI's imports (seconds on
        # the live image under emulation); only issuing a certificate needs them.
        from certs.pdf import render_pdf

        pdf = render_pdf(cert, env, signed, url=settings.verification_url, lang=lang)
        pending = seq.begin(state, number, env.digest, [pdf_path, json_path])
        atomic_write(pdf_path, pdf, exclusive=True)
        atomic_write(json_path, signed, exclusive=True)
        seq.commit(pending)
    return IssuedCertificate(
        json_path=json_path,
        pdf_path=pdf_path,
        certificate_id=cert_id,
        sequence=number,
        digest=env.digest,
        verified_success=cert.success,
        certificate=cert,
    )
