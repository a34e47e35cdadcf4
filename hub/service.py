"""The hub's logic, independent of HTTP: sessions, authentication, verification, lookups.

Trust model: an administrator registers an organisation's public key (:mod:`hub.admin`); a station
is enrolled with the organisation's endorsement of its key and receives a bearer token, of which
only the SHA-256 is stored.  Ingest (:mod:`hub.ingest`) accepts a certificate only when it verifies
against a trust store holding **nothing but the station's organisation key**: exactly what an
auditor holding that key does offline (``station verify --trust ORGKEY``), so whatever the hub
stores verifies offline.

Lookups show the organisation's *registered* name, never the name written inside an endorsement,
and when a station was revoked, whether a certificate was signed after that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from certs.trust import TrustStore
from certs.verify import Verdict, Verifier
from hub import admin
from hub.admin import token_hash
from hub.db import (
    IMMEDIATE,
    CertificateRow,
    Organisation,
    StaffInfo,
    Station,
    StationInfo,
    make_engine,
    session_factory,
)
from hub.errors import Forbidden, NotFound, Unauthorized
from hub.ids import is_certificate_id, normalise_id
from hub.ingest import MAX_UPLOAD_BYTES, Stored, ingest_certificate, ingest_destruction, ingest_report
from hub.migrate import ensure
from hub.staff import authenticate_staff
from hub.tlog import TransparencyLog

__all__ = ["MAX_UPLOAD_BYTES", "Check", "Found", "Hub", "StationInfo", "Stored", "summary", "token_hash"]

_VERDICT_CACHE = 20_000  # verdicts of stored certificates kept in memory (a few hundred bytes each)
#: Seconds between checks for a revocation list another hub process received.
REVOCATION_RECHECK = 5.0
_LISTS = select(Organisation.id, Organisation.revocation_list_sha256)


@dataclass(frozen=True)
class Check:
    """The verification of a stored certificate as lookups show it (cacheable, no personal data)."""

    ok: bool
    authentic: bool
    reason: str
    problems: tuple[tuple[str, str], ...]
    trust: str


@dataclass(frozen=True)
class Found:
    """A stored certificate with what a lookup shows next to it."""

    row: CertificateRow
    check: Check
    organisation_id: int
    organisation: str
    organisation_kid: str
    revoked_at: datetime | None
    revocation_reason: str | None

    @property
    def signed_after_revocation(self) -> bool:
        if self.revoked_at is None:
            return False
        issued = datetime.fromisoformat(self.row.issued_at.replace("Z", "+00:00"))
        return issued > _aware(self.revoked_at)


def _check_of(row: CertificateRow, organisation: str, verdict: Verdict) -> Check:
    trust = (
        f"signed by station key {row.station_kid[:16]}, endorsed by {organisation}"
        if verdict.authentic
        else verdict.reason
    )
    # A destruction record with no problem is valid, and still no erasure (``ok`` False).
    reason = "destruction" if verdict.destruction is not None and verdict.valid else verdict.reason
    return Check(verdict.ok, verdict.authentic, reason, tuple(verdict.problems), trust)


def _aware(ts: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they were stored in UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


# Built once: every request with a token runs it.
_AUTH = (
    select(
        Station.id,
        Station.station_id,
        Station.kid,
        Station.organisation_id,
        Station.token_sha256,
        Station.token_expires_at,
        Station.revoked_at,
        Organisation.name,
    )
    .join(Organisation, Organisation.id == Station.organisation_id)
    .where(Station.token_sha256 == bindparam("digest"))
)


class Hub:
    def __init__(self, db: str | Engine, *, create: bool = True, impact_factors: Path | None = None) -> None:
        self.engine = make_engine(db) if isinstance(db, str) else db
        self.impact_factors = impact_factors  # a network's impact factor table (hub.impact)
        if create:
            ensure(self.engine)
        self.sessions = session_factory(self.engine)
        # Ingest transactions: BEGIN IMMEDIATE on SQLite (see hub.db); PostgreSQL locks a row instead.
        self.write_engine = self.engine.execution_options(**{IMMEDIATE: True})
        self.postgres = self.engine.dialect.name == "postgresql"
        # Lookups and authentication read one statement's worth: on PostgreSQL in autocommit, which
        # saves the BEGIN and ROLLBACK round trips (each ingest still runs in one transaction).
        self.read_engine = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.postgres else self.engine
        )
        self.read_sessions = session_factory(self.read_engine)
        self.log = TransparencyLog(self.engine, self.write_engine, self.read_engine)
        self._verifiers: dict[int, Verifier] = {}
        self._checks: OrderedDict[tuple[str, str, bool], Check] = OrderedDict()
        self._lock = threading.Lock()
        self._revocation_lists: dict[int, str | None] | None = None  # organisation -> list's SHA-256
        self._revocations_checked = 0.0

    def session(self) -> Session:
        s: Session = self.sessions()
        return s

    def read_session(self) -> Session:
        s: Session = self.read_sessions()
        return s

    # --- administration (hub.admin) -------------------------------------------------------------

    def add_organisation(self, name: str, pem: bytes) -> tuple[int, str]:
        return admin.add_organisation(self.session(), name, pem)

    def enroll(
        self, endorsement: bytes, *, replace: bool = False, expires: datetime | None = None
    ) -> tuple[StationInfo, str]:
        st, org, token = admin.enroll(self.session(), endorsement, replace=replace, expires=expires)
        return StationInfo(st.id, st.station_id, st.kid, org.id, org.name), token

    def new_token(self, station: str, *, expires: datetime | None = None) -> str:
        return admin.new_token(self.session(), station, expires=expires)

    def revoke(self, station: str, reason: str = "", *, since: datetime | None = None) -> Station:
        return admin.revoke(self.session(), station, reason, since)

    def stations(self) -> list[dict[str, Any]]:
        return admin.list_stations(self.session())

    # --- ingest (hub.ingest) ----------------------------------------------------------------------

    def ingest_certificate(self, station: StationInfo, cert_id: str, body: bytes) -> Stored:
        return ingest_certificate(self, station, cert_id, body)

    def ingest_destruction(self, station: StationInfo, record_id: str, body: bytes) -> Stored:
        return ingest_destruction(self, station, record_id, body)

    def ingest_report(self, station: StationInfo, report_id: str, body: bytes) -> bool:
        return ingest_report(self, station, report_id, body)

    def redact(self, cert_id: str) -> CertificateRow:
        return admin.redact(self.session(), normalise_id(cert_id))

    # --- authentication ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> StationInfo:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("a station token is required (Authorization: Bearer <token>)")
        digest = token_hash(authorization[len("Bearer ") :].strip())
        station = self._station(digest)
        if station is None:
            raise Unauthorized("unknown station token")
        return station

    def _station(self, digest: str) -> StationInfo | None:
        with self.read_engine.connect() as conn:
            st = conn.execute(_AUTH, {"digest": digest}).first()
        if st is None or not hmac.compare_digest(st.token_sha256, digest):
            return None
        if st.revoked_at is not None:
            raise Forbidden("this station has been revoked", code="station_revoked")
        if st.token_expires_at is not None and _aware(st.token_expires_at) <= datetime.now(UTC):
            raise Unauthorized(
                "this station token has expired", code="token_expired", hint="ask for a new one"
            )
        return StationInfo(st.id, st.station_id, st.kid, st.organisation_id, st.name)

    def actor(self, authorization: str | None) -> StationInfo | StaffInfo:
        """A station or a person (staff token): ``Bearer <token>``, or HTTP Basic with the token as
        the password (what a browser sends for the staff pages, without any script)."""
        token = bearer_or_basic(authorization)
        if token is None:
            raise Unauthorized("a station or staff token is required (Authorization: Bearer <token>)")
        digest = token_hash(token)
        station = self._station(digest)
        if station is not None:
            return station
        staff = authenticate_staff(self.read_engine, digest)
        if staff is None:
            raise Unauthorized("unknown token")
        return staff

    # --- verification --------------------------------------------------------------------------

    def verifier_for(self, station_pk: int) -> Verifier:
        """A verifier trusting nothing but this station's organisation key (and honouring the
        revocation list it signed): an auditor's view."""
        self._refresh_revocations()
        with self._lock:
            cached = self._verifiers.get(station_pk)
        if cached is not None:
            return cached
        with self.read_session() as s:
            org = s.scalar(
                select(Organisation)
                .join(Station, Station.organisation_id == Organisation.id)
                .where(Station.id == station_pk)
            )
            if org is None:
                raise NotFound(f"no station {station_pk}")
            store = TrustStore()
            store.add_organisation_key(org.public_pem.encode("ascii"), f"organisation key {org.kid[:16]}")
            if org.revocation_list is not None:
                store.add_revocation_list(org.revocation_list, f"revocation list of {org.name}")
        verifier = Verifier(store)
        with self._lock:
            self._verifiers[station_pk] = verifier
        return verifier

    def drop_verifiers(self) -> None:
        """Forget cached verifiers and verdicts (a new revocation list arrived)."""
        with self._lock:
            self._verifiers.clear()
            self._checks.clear()
            self._revocations_checked = 0.0

    def _refresh_revocations(self) -> None:
        """Every few seconds, see whether another hub process received a new revocation list."""
        now = time.monotonic()
        if now < self._revocations_checked + REVOCATION_RECHECK:
            return
        with self.read_engine.connect() as conn:
            current = {r[0]: r[1] for r in conn.execute(_LISTS)}
        with self._lock:
            self._revocations_checked = now
            if self._revocation_lists is not None and current != self._revocation_lists:
                self._verifiers.clear()
                self._checks.clear()
            self._revocation_lists = current

    def check_stored(self, row: CertificateRow, organisation: str) -> Check:
        """Verify a stored certificate again (cached per stored bytes: they never change, and per
        revocation lists: a new one drops the cache).  The key is the hash of the bytes read now,
        not the stored column: bytes changed behind the hub's back are verified again."""
        self._refresh_revocations()
        intact = row.redacted_at is None
        key = (
            row.certificate_id,
            hashlib.sha256(row.body).hexdigest() if intact else row.body_sha256,
            intact,
        )
        with self._lock:
            hit = self._checks.get(key)
            if hit is not None:
                self._checks.move_to_end(key)
                return hit
        if row.redacted_at is not None:
            check = Check(
                ok=row.success,
                authentic=True,
                reason="ok"
                if row.success
                else ("destruction" if row.kind == "destruction" else "failure_report"),
                problems=(),
                trust=f"verified when received ({row.received_at:%Y-%m-%d}); the signed copy was "
                "removed on request (personal data); its SHA-256 is kept",
            )
        else:
            verdict = self.verifier_for(row.station_pk).verify_envelope(row.body, row.certificate_id)
            check = _check_of(row, organisation, verdict)
        with self._lock:
            self._keep(key, check)
        return check

    def remember_check(
        self, row: CertificateRow, organisation: str, verdict: Verdict, verifier: Verifier
    ) -> None:
        """Ingest verified these bytes a moment ago with the verifier a lookup would use: keep that
        verdict as a lookup's (the newest certificates are the ones looked up most; verification
        done once), unless the verifier was dropped meanwhile (a new revocation list)."""
        with self._lock:
            if self._verifiers.get(row.station_pk) is verifier:
                self._keep((row.certificate_id, row.body_sha256, True), _check_of(row, organisation, verdict))

    def _keep(self, key: tuple[str, str, bool], check: Check) -> None:
        """(Under ``self._lock``.)"""
        self._checks[key] = check
        while len(self._checks) > _VERDICT_CACHE:
            self._checks.popitem(last=False)

    # --- lookups -------------------------------------------------------------------------------

    def get(self, cert_id: str) -> CertificateRow:
        return self.find(cert_id).row

    def find(self, cert_id: str) -> Found:
        cert_id = normalise_id(cert_id)
        if not is_certificate_id(cert_id):
            raise NotFound("no certificate with this id (an id looks like 0b3c5e2a-...)")
        with self.read_session() as s:
            hit = s.execute(
                select(CertificateRow, Station, Organisation)
                .join(Station, Station.id == CertificateRow.station_pk)
                .join(Organisation, Organisation.id == Station.organisation_id)
                .where(CertificateRow.certificate_id == cert_id)
            ).first()
        if hit is None:
            raise NotFound(f"no certificate {cert_id} on this hub")
        return self._found(*hit)

    def _found(self, row: CertificateRow, st: Station, org: Organisation) -> Found:
        check = self.check_stored(row, org.name)
        return Found(row, check, org.id, org.name, org.kid, st.revoked_at, st.revocation_reason)

    def search(
        self,
        organisation_id: int,
        *,
        serial: str | None = None,
        asset_number: str | None = None,
        station: str | None = None,
        limit: int = 500,
    ) -> list[Found]:
        q = (
            select(CertificateRow, Station, Organisation)
            .join(Station, Station.id == CertificateRow.station_pk)
            .join(Organisation, Organisation.id == Station.organisation_id)
            .where(Station.organisation_id == organisation_id)
        )
        if serial:
            q = q.where(CertificateRow.serial == _term(serial))
        if asset_number:
            q = q.where(CertificateRow.asset_number == _term(asset_number))
        if station:
            q = q.where(CertificateRow.station_name == _term(station))
        q = q.order_by(CertificateRow.station_name, CertificateRow.sequence.desc()).limit(limit)
        with self.read_session() as s:
            rows = s.execute(q).all()
        return [self._found(*r) for r in rows]

    def chain_report(self, organisation_id: int, station: str) -> dict[str, Any]:
        """Per key of a station id: the sequence numbers stored and the gaps between them."""
        with self.read_session() as s:
            keys = list(
                s.scalars(
                    select(Station)
                    .where(Station.station_id == station, Station.organisation_id == organisation_id)
                    .order_by(Station.created_at)
                )
            )
            if not keys:
                raise NotFound(f"no station {station!r} in your organisation")
            chains = [_chain(s, st) for st in keys]
        active = [c for c in chains if c["revoked_at"] is None] or chains[-1:]
        return {"station_id": station, **active[-1], "keys": chains}

    def organisation(self, kid: str) -> tuple[Organisation, list[Station]]:
        """A registered organisation (by key fingerprint) and every station key it had enrolled."""
        kid = kid.strip().lower()
        with self.read_session() as s:
            org = s.scalar(select(Organisation).where(Organisation.kid == kid))
            if org is None:
                raise NotFound(f"no organisation with key {kid[:64]!r} on this hub")
            stations = list(
                s.scalars(select(Station).where(Station.organisation_id == org.id).order_by(Station.id))
            )
        return org, stations

    def organisations(self) -> list[Organisation]:
        with self.read_session() as s:
            return list(s.scalars(select(Organisation).order_by(Organisation.id)))

    def count(self) -> int:
        with self.read_session() as s:
            return int(s.scalar(select(func.count()).select_from(CertificateRow)) or 0)


def bearer_or_basic(authorization: str | None) -> str | None:
    """The token of ``Bearer <token>`` or of HTTP Basic (any user name, the token as password)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _term(value: str) -> str:
    """A search term as the indexed columns hold text (NUL shown as U+FFFD, see hub.ingest)."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _chain(s: Session, st: Station) -> dict[str, Any]:
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
        "kid": st.kid,
        "count": len(seqs),
        "highest": seqs[-1] if seqs else 0,
        "gaps": gaps,
        "revoked_at": _aware(st.revoked_at).isoformat() if st.revoked_at else None,
    }


def summary(found: Found) -> dict[str, Any]:
    """The public JSON of a lookup: non-personal facts plus the verification (see hub/README.md)."""
    row, check = found.row, found.check
    return {
        "certificate_id": row.certificate_id,
        "kind": row.kind,
        "verified": check.ok,
        "authentic": check.authentic,
        "reason": check.reason,
        "problems": [{"reason": r, "message": m} for r, m in check.problems],
        "outcome": row.outcome,
        "level_achieved": row.level_achieved,
        "serial": row.serial,
        "wwn": row.wwn,
        "model": row.model,
        "manufacturer": row.manufacturer,
        "asset_number": row.asset_number,
        "station": row.station_name,
        "station_kid": row.station_kid,
        "organisation": found.organisation,
        "organisation_kid": found.organisation_kid,
        "sequence": row.sequence,
        "sha256": row.digest,
        "issued_at": row.issued_at,
        "received_at": _aware(row.received_at).isoformat() if row.received_at else None,
        "trust": check.trust,
        "station_revoked_at": _aware(found.revoked_at).isoformat() if found.revoked_at else None,
        "station_revocation_reason": found.revocation_reason,
        "signed_after_revocation": found.signed_after_revocation,
        "personal_data_removed": row.redacted_at is not None,
    }


def deterministic_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tabula:" + ":".join(parts)))


def endorsement_json(st: Station) -> Any:
    return json.loads(st.endorsement)
