"""The hub's logic, independent of HTTP: organisations, station enrolment, ingest, lookups.

Trust model: an administrator registers an organisation's public key; a station is enrolled with the
organisation's endorsement of its key (``station keys endorse`` output) and receives a bearer token,
of which only the SHA-256 is stored.  On ingest a certificate must

1. be signed by the key of the station whose token uploads it (403 otherwise);
2. verify with :class:`certs.verify.Verifier` against a trust store holding only that station's
   organisation key and its endorsement (signature, trust, canonical payload, schema: 422 otherwise);
3. carry the certificate id it is uploaded under, and fit in the station's chain: no other
   certificate with its sequence number (409), and a previous-hash matching the stored predecessor
   and successor (422).

Failure reports are authentic records too: they are stored and shown as failure reports.
Re-uploading the same bytes under the same id answers 200 and stores nothing new; different bytes
under a stored id answer 409.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certs.errors import CertError, KeyStoreError
from certs.jws import TYP_CERTIFICATE, Envelope, kid_of, parse_envelope
from certs.keys import load_public_pem, read_endorsement
from certs.model import Certificate
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier
from hub.db import CertificateRow, Organisation, ReportRow, Station, init_db, make_engine, session_factory
from hub.errors import AdminError, Conflict, Forbidden, NotFound, Rejected, Unauthorized

MAX_UPLOAD_BYTES = 1024 * 1024
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StationInfo:
    """An authenticated station (detached from the database session)."""

    pk: int
    station_id: str
    kid: str
    organisation_id: int
    organisation: str


@dataclass(frozen=True)
class Stored:
    created: bool  # False: an identical copy was already stored
    row: CertificateRow


class Hub:
    def __init__(self, db: str | Engine) -> None:
        self.engine = make_engine(db) if isinstance(db, str) else db
        init_db(self.engine)
        self.sessions = session_factory(self.engine)
        self._verifiers: dict[int, Verifier] = {}
        self._lock = threading.Lock()

    def session(self) -> Session:
        s: Session = self.sessions()
        return s

    # --- administration ------------------------------------------------------------------------

    def add_organisation(self, name: str, pem: bytes) -> tuple[int, str]:
        if not name.strip():
            raise AdminError("the organisation needs a name")
        if b"PRIVATE KEY" in pem:
            raise AdminError("this is a private key: register the organisation's public key only")
        try:
            key = load_public_pem(pem, "organisation key")
        except KeyStoreError as e:
            raise AdminError(e.message) from e
        kid = kid_of(key)
        with self.session() as s, s.begin():
            existing = s.scalar(select(Organisation).where(Organisation.kid == kid))
            if existing is not None:
                raise AdminError(f"this key is already registered for {existing.name!r}")
            org = Organisation(name=name.strip(), kid=kid, public_pem=pem.decode("ascii"))
            s.add(org)
            s.flush()
            return org.id, kid

    def enroll(self, endorsement: bytes) -> tuple[StationInfo, str]:
        """Enroll the station an organisation endorsed; returns it and its new token (shown once)."""
        try:
            e = read_endorsement(endorsement)
        except CertError as err:
            raise AdminError(f"not a valid endorsement: {err.message}") from err
        token = secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            org = s.scalar(select(Organisation).where(Organisation.kid == e.org_kid))
            if org is None:
                raise AdminError(
                    f"the endorsement is signed by key {e.org_kid[:16]}, which is not a registered organisation",
                    hint="register the organisation's public key first: station-hub org add",
                )
            if s.scalar(select(Station).where(Station.kid == e.station_kid)) is not None:
                raise AdminError(
                    f"station key {e.station_kid[:16]} is already enrolled",
                    hint="use 'station-hub token' to issue it a new token",
                )
            st = Station(
                station_id=e.station_id,
                kid=e.station_kid,
                organisation_id=org.id,
                endorsement=json.dumps(e.envelope.to_json(), sort_keys=True),
                token_sha256=token_hash(token),
            )
            s.add(st)
            s.flush()
            info = StationInfo(st.id, st.station_id, st.kid, org.id, org.name)
        return info, token

    def _station_row(self, s: Session, station: str) -> Station:
        row = s.scalar(select(Station).where((Station.station_id == station) | (Station.kid == station)))
        if row is None:
            raise AdminError(f"no enrolled station {station!r} (give its id or key fingerprint)")
        return row

    def new_token(self, station: str) -> str:
        """Replace a station's token (the old one stops working at once)."""
        token = secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            row = self._station_row(s, station)
            row.token_sha256 = token_hash(token)
            row.revoked = False
        return token

    def revoke(self, station: str) -> None:
        with self.session() as s, s.begin():
            self._station_row(s, station).revoked = True

    def stations(self) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.execute(select(Station, Organisation).join(Organisation)).all()
            return [
                {
                    "station_id": st.station_id,
                    "kid": st.kid,
                    "organisation": org.name,
                    "revoked": st.revoked,
                    "enrolled_at": st.created_at.isoformat(),
                }
                for st, org in rows
            ]

    # --- authentication ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> StationInfo:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a station token is required (Authorization: Bearer <token>)")
        digest = token_hash(authorization[len("Bearer ") :].strip())
        with self.session() as s:
            row = s.execute(
                select(Station, Organisation).join(Organisation).where(Station.token_sha256 == digest)
            ).first()
            if row is None or not hmac.compare_digest(row[0].token_sha256, digest):
                raise Unauthorized("unknown station token")
            st, org = row
            if st.revoked:
                raise Forbidden("this station has been revoked", code="station_revoked")
            return StationInfo(st.id, st.station_id, st.kid, org.id, org.name)

    # --- verification --------------------------------------------------------------------------

    def verifier_for(self, station_pk: int) -> Verifier:
        """A verifier trusting only this station's organisation key and its enrolment endorsement."""
        with self._lock:
            cached = self._verifiers.get(station_pk)
        if cached is not None:
            return cached
        with self.session() as s:
            row = s.execute(
                select(Station, Organisation).join(Organisation).where(Station.id == station_pk)
            ).first()
            if row is None:
                raise NotFound(f"no station {station_pk}")
            st, org = row
            store = TrustStore()
            store.add_pem(org.public_pem.encode("ascii"), f"organisation {org.name}")
            store.add_endorsement(json.loads(st.endorsement), f"enrolment of {st.station_id}")
        verifier = Verifier(store)
        with self._lock:
            self._verifiers[station_pk] = verifier
        return verifier

    def verify_stored(self, row: CertificateRow) -> Verdict:
        """Verify a stored certificate again, now (what the lookup pages show)."""
        return self.verifier_for(row.station_pk).verify_envelope(row.body, row.certificate_id)

    # --- ingest --------------------------------------------------------------------------------

    def ingest_certificate(self, station: StationInfo, cert_id: str, body: bytes) -> Stored:
        if not _UUID.match(cert_id):
            raise Rejected("the certificate id in the URL is not a lowercase UUID", code="bad_id")
        if len(body) > MAX_UPLOAD_BYTES:
            raise Rejected("certificate too large", code="payload_too_large")
        try:
            env = parse_envelope(body, expect=TYP_CERTIFICATE)
        except CertError as e:
            raise Rejected(f"not a signed certificate: {e.message}", code=e.reason) from e
        if env.kid != station.kid:
            raise Forbidden(
                f"signed by key {env.kid[:16]}, not by this station's key {station.kid[:16]}",
                code="foreign_signature",
            )
        verdict = self.verifier_for(station.pk).verify_envelope(body, cert_id)
        cert = verdict.certificate
        if cert is None:
            reason, message = verdict.problems[0]
            raise Rejected(f"the certificate does not verify: {message}", code=reason)
        if cert.certificate_id != cert_id:
            raise Rejected(
                f"uploaded as {cert_id} but the signed certificate id is {cert.certificate_id}",
                code="id_mismatch",
            )
        if cert.station.id != station.station_id:
            raise Forbidden(
                f"issued by station {cert.station.id!r}, this token belongs to {station.station_id!r}",
                code="foreign_signature",
            )
        body_sha = hashlib.sha256(body).hexdigest()
        try:
            return self._store(station, cert, env, verdict, body, body_sha)
        except IntegrityError:
            # A concurrent upload of the same id (or the same chain place) won the race: answer as if
            # this one had come second.
            with self.session() as s:
                existing = s.get(CertificateRow, cert_id)
            if existing is not None and existing.body_sha256 == body_sha:
                return Stored(False, existing)
            raise Conflict(
                f"another certificate already holds id {cert_id} or sequence {cert.station.sequence}",
                code="conflict",
            ) from None

    def _store(
        self,
        station: StationInfo,
        cert: Certificate,
        env: Envelope,
        verdict: Verdict,
        body: bytes,
        body_sha: str,
    ) -> Stored:
        seq = cert.station.sequence
        with self.session() as s, s.begin():
            existing = s.get(CertificateRow, cert.certificate_id)
            if existing is not None:
                if existing.body_sha256 == body_sha:
                    return Stored(False, existing)
                raise Conflict(
                    f"certificate {cert.certificate_id} is already stored with different content",
                    code="id_conflict",
                )
            neighbours = {
                r.sequence: r
                for r in s.scalars(
                    select(CertificateRow).where(
                        CertificateRow.station_kid == env.kid,
                        CertificateRow.sequence.in_((seq - 1, seq, seq + 1)),
                    )
                )
            }
            if seq in neighbours:
                raise Conflict(
                    f"sequence {seq} of this station is already taken by certificate "
                    f"{neighbours[seq].certificate_id}",
                    code="chain_duplicate",
                )
            before, after = neighbours.get(seq - 1), neighbours.get(seq + 1)
            if before is not None and cert.station.previous != before.digest:
                raise Rejected(
                    f"#{seq} does not link to the stored certificate #{seq - 1}", code="chain_break"
                )
            if after is not None and after.previous != env.digest:
                raise Rejected(f"the stored #{seq + 1} does not link to this #{seq}", code="chain_break")
            m = cert.media
            row = CertificateRow(
                certificate_id=cert.certificate_id,
                station_pk=station.pk,
                station_kid=env.kid,
                station_name=cert.station.id,
                sequence=seq,
                previous=cert.station.previous,
                digest=env.digest,
                body_sha256=body_sha,
                kind=cert.kind,
                success=cert.success,
                outcome=cert.result.outcome,
                level_achieved=cert.sanitization.level_achieved,
                serial=m.serial,
                wwn=m.wwn,
                model=m.model,
                manufacturer=m.manufacturer,
                asset_number=m.asset_number,
                issued_at=cert.issued_at,
                trust=verdict.trust,
                body=body,
            )
            s.add(row)
        return Stored(True, row)

    def ingest_report(self, station: StationInfo, report_id: str, body: bytes) -> bool:
        """Store a diagnostics report; its id is the SHA-256 of its bytes.  True when new."""
        if not _HEX64.match(report_id):
            raise Rejected("a report id is the lowercase hex SHA-256 of the report", code="bad_id")
        if hashlib.sha256(body).hexdigest() != report_id:
            raise Rejected("the report's SHA-256 does not match its id", code="id_mismatch")
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise Rejected(f"a report is a JSON object: {e}", code="malformed") from e
        if not isinstance(doc, dict):
            raise Rejected("a report is a JSON object", code="malformed")
        try:
            with self.session() as s, s.begin():
                if s.get(ReportRow, report_id) is not None:
                    return False
                s.add(ReportRow(report_id=report_id, station_pk=station.pk, body=body))
        except IntegrityError:
            return False  # the same bytes stored concurrently: same id, same content
        return True

    # --- lookups -------------------------------------------------------------------------------

    def get(self, cert_id: str) -> CertificateRow:
        if not _UUID.match(cert_id):
            raise NotFound("no certificate with this id (an id looks like 0b3c5e2a-...)")
        with self.session() as s:
            row = s.get(CertificateRow, cert_id)
        if row is None:
            raise NotFound(f"no certificate {cert_id} on this hub")
        return row

    def search(
        self,
        organisation_id: int,
        *,
        serial: str | None = None,
        asset_number: str | None = None,
        station: str | None = None,
        limit: int = 500,
    ) -> list[CertificateRow]:
        q = (
            select(CertificateRow)
            .join(Station, Station.id == CertificateRow.station_pk)
            .where(Station.organisation_id == organisation_id)
        )
        if serial:
            q = q.where(CertificateRow.serial == serial)
        if asset_number:
            q = q.where(CertificateRow.asset_number == asset_number)
        if station:
            q = q.where(CertificateRow.station_name == station)
        q = q.order_by(CertificateRow.station_name, CertificateRow.sequence).limit(limit)
        with self.session() as s:
            return list(s.scalars(q))

    def chain_report(self, organisation_id: int, station: str) -> dict[str, Any]:
        """The sequence numbers stored for a station and the gaps between them."""
        with self.session() as s:
            st = s.scalar(
                select(Station).where(
                    Station.station_id == station, Station.organisation_id == organisation_id
                )
            )
            if st is None:
                raise NotFound(f"no station {station!r} in your organisation")
            seqs = list(
                s.scalars(
                    select(CertificateRow.sequence)
                    .where(CertificateRow.station_pk == st.id)
                    .order_by(CertificateRow.sequence)
                )
            )
        gaps: list[list[int]] = []
        expected = 1
        for n in seqs:
            if n > expected:
                gaps.append([expected, n - 1])
            expected = n + 1
        return {
            "station_id": st.station_id,
            "kid": st.kid,
            "count": len(seqs),
            "highest": seqs[-1] if seqs else 0,
            "gaps": gaps,
        }

    def count(self) -> int:
        from sqlalchemy import func

        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(CertificateRow)) or 0)


def summary(row: CertificateRow, verdict: Verdict) -> dict[str, Any]:
    """The JSON a lookup returns: stored facts plus the verification done now."""
    return {
        "certificate_id": row.certificate_id,
        "kind": row.kind,
        "verified": verdict.ok,
        "authentic": verdict.authentic,
        "reason": verdict.reason,
        "problems": [{"reason": r, "message": m} for r, m in verdict.problems],
        "outcome": row.outcome,
        "level_achieved": row.level_achieved,
        "serial": row.serial,
        "wwn": row.wwn,
        "model": row.model,
        "manufacturer": row.manufacturer,
        "asset_number": row.asset_number,
        "station": row.station_name,
        "station_kid": row.station_kid,
        "sequence": row.sequence,
        "sha256": row.digest,
        "issued_at": row.issued_at,
        "received_at": row.received_at.isoformat() if row.received_at else None,
        "trust": verdict.trust,
    }


def deterministic_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tabula:" + ":".join(parts)))
