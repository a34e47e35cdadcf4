"""Ingest: verify an uploaded certificate, then store it in its station's chain, serialised.

A certificate is accepted when

1. its id (as uploaded, normalised like every route does) is a UUID and its size is under 1 MiB;
2. it is a well-formed JWS whose unprotected header holds nothing but ``endorsement`` (anything
   else is not covered by the signature and would be served to auditors as if it were);
3. it is signed by the key of the station whose token uploads it (403 otherwise);
4. it verifies against a trust store holding **only the station's organisation key** - what an
   auditor does offline with ``station verify --trust ORGKEY`` - so it must carry a valid
   endorsement of its key by that organisation (422 with the verifier's reason otherwise);
5. it fits its station key's chain.

Every certificate stored is then appended to the hub's transparency log (:mod:`hub.tlog`) and the
answer carries its inclusion proof, for a new certificate and for one already stored alike.

Chains are serialised per station key: on PostgreSQL the station's row is locked (``SELECT ... FOR
UPDATE``) for the transaction; on SQLite the transaction starts with ``BEGIN IMMEDIATE`` (one writer
at a time; it reads under its write lock).  The database backs this up with unique indexes on
``(station_kid, sequence)`` and ``(station_kid, previous)``: no interleaving stores a broken or
forked chain.  The signed content is the idempotency key: the same certificate again is 200, never
409, whatever the concurrency.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Row, and_, bindparam, func, insert, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certs.destruction import DestructionRecord
from certs.errors import CertError
from certs.jws import TYP_CERTIFICATE, TYP_DESTRUCTION, Envelope, parse_envelope
from certs.model import Certificate
from certs.verify import Verdict, Verifier
from hub.db import CertificateRow, LogQueue, ReportRow, Station, StationInfo, utcnow
from hub.errors import Conflict, Forbidden, Rejected, TooLarge, Transient
from hub.ids import is_certificate_id, is_report_id, normalise_id
from hub.lotfacts import report_keys
from hub.tlog import Appended, Logged, TransparencyLog


class Linked(Protocol):
    """A certificate's place in its chain (a stored row, or one being stored)."""

    @property
    def certificate_id(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def previous(self) -> str | None: ...
    @property
    def digest(self) -> str: ...


class Hub(Protocol):
    """What ingest needs of :class:`hub.service.Hub` (a protocol: the service imports this module)."""

    postgres: bool
    log: TransparencyLog

    @property
    def write_engine(self) -> Engine: ...

    def verifier_for(self, station_pk: int) -> Verifier: ...

    def remember_check(
        self, row: CertificateRow, organisation: str, verdict: Verdict, verifier: Verifier
    ) -> None: ...

    def session(self) -> Session: ...


log = logging.getLogger("hub.ingest")

MAX_UPLOAD_BYTES = 1024 * 1024
UNPROTECTED_MEMBERS = frozenset({"endorsement"})
_OFFLINE_HINT = (
    "the certificate must carry its station key's endorsement by the organisation: an auditor "
    "holding only the organisation's public key verifies it with that"
)
_TRIES = 3


@dataclass(frozen=True)
class Stored:
    created: bool  # False: this certificate was already stored
    row: CertificateRow
    appended: Appended | None = None  # the append its own transaction made (hub.tlog), if any
    proof: dict[str, Any] | None = None  # its inclusion proof in the transparency log (hub.tlog)


def _envelope(body: bytes, station: StationInfo, typ: str = TYP_CERTIFICATE) -> Envelope:
    what = "certificate" if typ == TYP_CERTIFICATE else "destruction record"
    try:
        env = parse_envelope(body, expect=typ)
    except CertError as e:
        raise Rejected(f"not a signed {what}: {e.message}", code=e.reason) from e
    except ValueError as e:  # an integer of over 4,300 digits (int() refuses to convert it)
        raise Rejected(f"not a signed {what}: {str(e)[:120]}", code="malformed") from None
    unknown = sorted(set(env.unprotected) - UNPROTECTED_MEMBERS)
    if unknown:
        raise Rejected(
            f"unknown member(s) in the unprotected JWS header: {', '.join(map(str, unknown))}",
            code="unknown_header_member",
        )
    if env.kid != station.kid:
        raise Forbidden(
            f"signed by key {env.kid[:16]}, not by this station's key {station.kid[:16]}",
            code="foreign_signature",
        )
    return env


def verified_certificate(hub: Hub, station: StationInfo, cert_id: str, body: bytes) -> Certificate:
    """The certificate, checked as an auditor holding only the organisation key would check it."""
    return _verified(hub, station, cert_id, body)[0]


def _verified(
    hub: Hub, station: StationInfo, cert_id: str, body: bytes
) -> tuple[Certificate, Verdict, Verifier]:
    verifier = hub.verifier_for(station.pk)
    try:
        verdict = verifier.verify_envelope(body, cert_id)
    except ValueError as e:  # a payload integer of over 4,300 digits; the verifier lets it through
        raise Rejected(f"the certificate does not verify: {str(e)[:120]}", code="schema_error") from None
    cert = verdict.certificate
    if cert is None:
        reason, message = verdict.problems[0]
        hint = _OFFLINE_HINT if reason in ("unknown_key", "unendorsed_key") else None
        raise Rejected(f"the certificate does not verify: {message}", code=reason, hint=hint)
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
    return cert, verdict, verifier


def _indexed(value: str | None) -> str | None:
    """Drive strings may hold NUL (firmware padding); PostgreSQL text cannot: the index copy shows U+FFFD."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _chain_row(
    station: StationInfo,
    record: Certificate | DestructionRecord,
    env: Envelope,
    body: bytes,
    **what: Any,
) -> CertificateRow:
    """The columns every signed record of a station's chain fills the same way; ``what`` says what it
    is (kind, success, outcome, level)."""
    m = record.media
    return CertificateRow(
        certificate_id=record.certificate_id,
        station_pk=station.pk,
        station_kid=env.kid,
        station_name=record.station.id,
        sequence=record.station.sequence,
        previous=record.station.previous,
        digest=env.digest,
        body_sha256=hashlib.sha256(body).hexdigest(),
        serial=_indexed(m.serial),
        wwn=_indexed(m.wwn),
        model=_indexed(m.model),
        manufacturer=_indexed(m.manufacturer),
        asset_number=m.asset_number,
        lot=signed_lot(m),
        issued_at=record.issued_at,
        trust=f"station key {env.kid[:16]} endorsed by {station.organisation} (organisation #{station.organisation_id})",
        body=body,
        **what,
    )


def new_row(station: StationInfo, cert: Certificate, env: Envelope, body: bytes) -> CertificateRow:
    return _chain_row(
        station,
        cert,
        env,
        body,
        kind=cert.kind,
        success=cert.success,
        outcome=cert.result.outcome,
        level_achieved=cert.sanitization.level_achieved,
    )


def signed_lot(media: object) -> str | None:
    """The lot reference a signed record carries next to its asset number (``media.lot``), if any."""
    lot = getattr(media, "lot", None)
    return lot if isinstance(lot, str) and lot else None


def _checked_upload(raw_id: str, body: bytes, valid: Callable[[str], bool], wrong: str) -> str:
    """The normalised id of an upload, after the checks every upload gets (id form, size)."""
    upload_id = normalise_id(raw_id)
    if not valid(upload_id):
        raise Rejected(wrong, code="bad_id")
    if len(body) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
    return upload_id


def prepare(hub: Hub, station: StationInfo, cert_id: str, body: bytes) -> CertificateRow:
    """Every check of an upload that needs no database (items 1-4 above): the row to store."""
    cert_id = _checked_upload(cert_id, body, is_certificate_id, "the certificate id in the URL is not a UUID")
    env = _envelope(body, station)
    cert, verdict, verifier = _verified(hub, station, cert_id, body)
    row = new_row(station, cert, env, body)
    hub.remember_check(row, station.organisation, verdict, verifier)
    return row


def busy() -> Transient:
    """What a constraint race that outlived every try answers (single and batch uploads)."""
    return Transient("concurrent uploads conflicted; send it again", code="busy", retry_after=1)


def ingest_certificate(hub: Hub, station: StationInfo, cert_id: str, body: bytes) -> Stored:
    row = prepare(hub, station, cert_id, body)
    return _chained(hub, station, lambda: row)  # the row is not bound to a session: reusable


def verified_destruction(hub: Hub, station: StationInfo, record_id: str, body: bytes) -> DestructionRecord:
    """The destruction record, checked as an auditor holding only the organisation key would."""
    try:
        verdict = hub.verifier_for(station.pk).verify_envelope(body, record_id)
    except ValueError as e:
        raise Rejected(
            f"the destruction record does not verify: {str(e)[:120]}", code="schema_error"
        ) from None
    record = verdict.destruction
    if record is None or verdict.problems:
        reason, message = (
            verdict.problems[0] if verdict.problems else ("malformed", "not a destruction record")
        )
        hint = _OFFLINE_HINT if reason in ("unknown_key", "unendorsed_key") else None
        raise Rejected(f"the destruction record does not verify: {message}", code=reason, hint=hint)
    if record.record_id != record_id:
        raise Rejected(
            f"uploaded as {record_id} but the signed record id is {record.record_id}", code="id_mismatch"
        )
    if record.station.id != station.station_id:
        raise Forbidden(
            f"issued by station {record.station.id!r}, this token belongs to {station.station_id!r}",
            code="foreign_signature",
        )
    return record


def destruction_row(
    station: StationInfo, rec: DestructionRecord, env: Envelope, body: bytes
) -> CertificateRow:
    """A destruction record takes its place in the station's chain like a certificate: same table,
    same chain constraints, same transparency log; ``kind`` says what it is, never an erasure."""
    return _chain_row(
        station,
        rec,
        env,
        body,
        kind="destruction",
        success=False,
        outcome="destroyed",
        level_achieved="destroy",
    )


def ingest_destruction(hub: Hub, station: StationInfo, record_id: str, body: bytes) -> Stored:
    """Verify and store a destruction record (``PUT /api/v1/destructions/{id}``): the same checks,
    answers and chain as a certificate."""
    record_id = _checked_upload(record_id, body, is_certificate_id, "the record id in the URL is not a UUID")
    env = _envelope(body, station, TYP_DESTRUCTION)
    record = verified_destruction(hub, station, record_id, body)
    return _chained(hub, station, lambda: destruction_row(station, record, env, body))


def _chained(hub: Hub, station: StationInfo, make_row: Callable[[], CertificateRow]) -> Stored:
    row = make_row()
    cert_id = row.certificate_id
    for attempt in range(1, _TRIES + 1):
        try:
            return _logged(hub, _store(hub, station, row))
        except IntegrityError as e:
            # Only a race the lock does not cover reaches here (the same certificate id uploaded by
            # two stations at once): the next try sees the committed row and answers for it.
            log.info("ingest of %s hit a constraint (try %d): %s", cert_id, attempt, e.orig)
            row = make_row()
    raise busy()


def _logged(hub: Hub, stored: Stored) -> Stored:
    """The stored certificate with its inclusion proof (appending the log's queue if needed)."""
    row, appended = stored.row, stored.appended
    if appended is not None and row.certificate_id in appended.indexes:
        logged = Logged(appended.indexes[row.certificate_id], appended.head, appended)
    else:
        logged = hub.log.ensure_logged(row.certificate_id, fresh=stored.created)
    return replace(stored, proof=hub.log.proof(row.certificate_id, row.digest, logged))


_T = CertificateRow.__table__.c
# Built once (statement construction is a large share of an upload's CPU): the station's lock, and
# the one read that decides: this id, the neighbours, and any certificate with the same predecessor.
_LOCK = select(Station.id).where(Station.id == bindparam("pk")).with_for_update()
# PostgreSQL: the same lock, and this transaction's commit need not wait for its own WAL flush: the
# upload is answered only after the log append that includes it commits (synchronously), and
# PostgreSQL flushes its WAL in order, so this certificate is durable by then.  A crash before that
# loses a certificate that was never acknowledged (the station sends it again).  One disk flush
# per batch of uploads instead of one per upload plus one per batch.
_LOCK_PG = (
    select(Station.id, func.set_config("synchronous_commit", "off", True))
    .where(Station.id == bindparam("pk"))
    .with_for_update(of=Station)
)
_NEAR = select(_T.certificate_id, _T.station_kid, _T.sequence, _T.previous, _T.digest).where(
    or_(
        _T.certificate_id == bindparam("cid"),
        and_(
            _T.station_kid == bindparam("kid"),
            or_(_T.sequence.between(bindparam("lo"), bindparam("hi")), _T.previous == bindparam("prev")),
        ),
    )
)
_INSERT = insert(CertificateRow)
_COLUMNS = [c.name for c in CertificateRow.__table__.columns]
# PostgreSQL: store and queue for the log (hub.logwriter) in one statement.
_STORED = (
    insert(CertificateRow)
    .values({name: bindparam(name) for name in _COLUMNS})
    .returning(CertificateRow.certificate_id, CertificateRow.digest)
    .cte("stored")
)
_INSERT_QUEUED = insert(LogQueue).from_select(
    ["certificate_id", "digest"], select(_STORED.c.certificate_id, _STORED.c.digest)
)


def _store(hub: Hub, station: StationInfo, row: CertificateRow) -> Stored:
    with hub.write_engine.begin() as conn:
        if hub.postgres:
            conn.execute(_LOCK_PG, {"pk": station.pk})
        # (SQLite: BEGIN IMMEDIATE already holds the database's write lock.)
        near = conn.execute(
            _NEAR,
            {
                "cid": row.certificate_id,
                "kid": row.station_kid,
                "lo": row.sequence - 1,
                "hi": row.sequence + 1,
                "prev": row.previous,  # NULL matches nothing: a first certificate cannot fork
            },
        ).all()
        existing = next((r for r in near if r.certificate_id == row.certificate_id), None)
        if existing is not None:
            if existing.digest == row.digest:
                return Stored(False, row)  # the same signed content: the same facts
            raise Conflict(
                f"certificate {row.certificate_id} is already stored with different content",
                code="id_conflict",
            )
        _check_chain(row, [r for r in near if r.station_kid == row.station_kid])
        row.received_at = utcnow()
        values = {name: getattr(row, name) for name in _COLUMNS}
        if hub.postgres:  # stored and queued; appended after commit (hub.logwriter)
            conn.execute(_INSERT_QUEUED, values)
            return Stored(True, row)
        conn.execute(_INSERT, values)
        appended = hub.log.writer.append_now(conn, row.certificate_id, row.digest)
    return Stored(True, row, appended)


def _check_chain(row: CertificateRow, near: Sequence[Row[Any, Any, Any, Any, Any]]) -> None:
    twin = next((r for r in near if row.previous is not None and r.previous == row.previous), None)
    check_links(row, {r.sequence: r for r in near}, twin)


def check_links(row: Linked, neighbours: Mapping[int, Linked], twin: Linked | None) -> None:
    """``row`` fits its chain: ``neighbours`` holds the stored certificates of its key by sequence
    (at least those next to it), ``twin`` one already following its predecessor (a fork)."""
    seq = row.sequence
    if seq in neighbours:
        raise Conflict(
            f"sequence {seq} of this station is already taken by certificate "
            f"{neighbours[seq].certificate_id}",
            code="chain_duplicate",
        )
    before, after = neighbours.get(seq - 1), neighbours.get(seq + 1)
    if before is not None and row.previous != before.digest:
        raise Rejected(f"#{seq} does not link to the stored certificate #{seq - 1}", code="chain_break")
    if after is not None and after.previous != row.digest:
        raise Rejected(f"the stored #{seq + 1} does not link to this #{seq}", code="chain_break")
    if twin is not None:
        raise Rejected(
            f"#{twin.sequence} ({twin.certificate_id}) already follows the same predecessor: "
            "this would fork the chain",
            code="chain_break",
        )


# --- diagnostics reports ------------------------------------------------------------------------


def parse_report(body: bytes) -> dict[str, Any]:
    """A report is a JSON object.  Hostile input (deep nesting, huge numbers, bad UTF-8) is a 422."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, int digits
        message = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
        raise Rejected(f"a report is a JSON object: {message}", code="malformed") from None
    if not isinstance(doc, dict):
        raise Rejected("a report is a JSON object", code="malformed")
    return doc


def ingest_report(hub: Hub, station: StationInfo, report_id: str, body: bytes) -> bool:
    """Store a diagnostics report; its id is the SHA-256 of its bytes.  True when new."""
    report_id = _checked_upload(report_id, body, is_report_id, "a report id is the hex SHA-256 of the report")
    if hashlib.sha256(body).hexdigest() != report_id:
        raise Rejected("the report's SHA-256 does not match its id", code="id_mismatch")
    parse_report(body)
    asset, lot = report_keys(body)
    try:
        with hub.session() as s, s.begin():
            if s.get(ReportRow, report_id) is not None:
                return False
            s.add(
                ReportRow(report_id=report_id, station_pk=station.pk, body=body, asset_number=asset, lot=lot)
            )
    except IntegrityError:
        return False  # the same bytes stored concurrently: same id, same content
    return True
