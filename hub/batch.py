"""Batch upload: up to :data:`MAX_ITEMS` signed certificates of one station in one request.

``POST /api/v1/certificates:batch`` with ``{"certificates": [{"certificate_id": ID, "body": B64}, ...]}``
(``body``: the exact bytes a single ``PUT /api/v1/certificates/{id}`` would carry, base64; byte
identity is what makes a re-upload idempotent).  Each item is checked exactly as a single upload is
(:func:`hub.ingest.prepare`: id, size, envelope, signature, the organisation's endorsement), then all
the items that passed are stored in **one transaction** under the same per-key serialisation as
single uploads (the station's row locked on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite; the unique
indexes behind it), each against the stored chain *and* the items of the batch before it: the
answer for each item is the one the same single uploads, in the same order, would have had (201
stored, 200 already stored, 4xx with the reason, 503 when the database refused).  Items need not be
in chain order; a station sends them in the order it signed them.

The request as a whole is refused only when it is not a batch (400 ``malformed_batch``), too large
(413 ``batch_too_large``: more than :data:`MAX_ITEMS` items or :data:`MAX_BYTES` bytes), not
authenticated (401/403), or when the database is unavailable (503 + ``Retry-After``: nothing was
stored).  Otherwise the answer is 200 with one result per item, in the order sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hub.db import CertificateRow, StationInfo, utcnow
from hub.errors import Conflict, HubError, TooLarge
from hub.ingest import (
    _COLUMNS,
    _INSERT,
    _INSERT_QUEUED,
    _LOCK_PG,
    _T,
    _TRIES,
    Hub,
    Stored,
    busy,
    check_links,
    log,
    prepare,
)

#: Items per batch at most, and bytes per request (the base64 of the bodies and the JSON around them).
MAX_ITEMS = 100
MAX_BYTES = 8 * 1024 * 1024
#: Against a token's rate limit a batch counts one request per this many certificates: what it costs
#: the hub (measured: 0.6-0.7 ms of CPU a certificate in a batch, 2.0-2.2 ms a single upload).
ITEMS_PER_REQUEST = 3

# The one read that decides for the whole batch: these ids, and every stored certificate of the
# key next to one of the items or following the same predecessor.
_NEAR_MANY = select(_T.certificate_id, _T.station_kid, _T.sequence, _T.previous, _T.digest).where(
    or_(
        _T.certificate_id.in_(bindparam("cids", expanding=True)),
        and_(
            _T.station_kid == bindparam("kid"),
            or_(
                _T.sequence.in_(bindparam("seqs", expanding=True)),
                _T.previous.in_(bindparam("prevs", expanding=True)),
            ),
        ),
    )
)


class MalformedBatch(HubError):
    code = "malformed_batch"


@dataclass(frozen=True)
class Result:
    """One item's answer: what a single upload of it would have answered."""

    certificate_id: str
    stored: Stored | None = None
    error: HubError | None = None

    @property
    def status(self) -> int:
        if self.stored is not None:
            return 201 if self.stored.created else 200
        assert self.error is not None
        return self.error.status


def parse_batch(body: bytes) -> list[tuple[str, bytes]]:
    """The (id as sent, exact bytes) of each item; anything else is refused as a whole (400/413)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, an endless integer, deep nesting
        raise MalformedBatch('a batch is a JSON object {"certificates": [...]}') from None
    items = doc.get("certificates") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise MalformedBatch('a batch is a JSON object {"certificates": [...]} with at least one item')
    if len(items) > MAX_ITEMS:
        raise TooLarge(
            f"a batch holds at most {MAX_ITEMS} certificates, not {len(items)}", code="batch_too_large"
        )
    out = []
    for n, item in enumerate(items):
        cid = item.get("certificate_id") if isinstance(item, dict) else None
        b64 = item.get("body") if isinstance(item, dict) else None
        if not isinstance(cid, str) or not isinstance(b64, str):
            raise MalformedBatch(f'item {n}: {{"certificate_id": "...", "body": "<base64>"}} expected')
        try:
            out.append((cid, base64.b64decode(b64, validate=True)))
        except (binascii.Error, ValueError):
            raise MalformedBatch(f"item {n}: the body is not base64") from None
    return out


def ingest_batch(hub: Hub, station: StationInfo, items: list[tuple[str, bytes]]) -> list[Result]:
    """Check, store (one transaction) and log every item; one result per item, in order."""
    results: list[Result | None] = [None] * len(items)
    rows: list[tuple[int, CertificateRow]] = []
    for i, (cid, body) in enumerate(items):
        try:
            rows.append((i, prepare(hub, station, cid, body)))
        except HubError as e:  # the certificate itself is wrong: what a single upload answers
            results[i] = Result(cid, error=e)
    decided = _stored_with_retries(hub, station, rows)
    stored = {i: d for i, d in decided.items() if isinstance(d, Stored)}
    proven = _with_proofs(hub, list(stored.values()))
    for i, row in rows:
        outcome = decided[i]
        if isinstance(outcome, Stored):
            results[i] = Result(row.certificate_id, stored=proven[id(outcome)])
        else:
            results[i] = Result(row.certificate_id, error=outcome)
    return [r for r in results if r is not None]


def _stored_with_retries(
    hub: Hub, station: StationInfo, rows: list[tuple[int, CertificateRow]]
) -> dict[int, Stored | HubError]:
    if not rows:
        return {}
    for attempt in range(1, _TRIES + 1):
        try:
            return _store_batch(hub, station, rows)
        except IntegrityError as e:
            # As for single uploads: only a race the lock does not cover (one certificate id sent
            # by two stations at once); the next try sees the committed row and answers for it.
            log.info("batch ingest hit a constraint (try %d): %s", attempt, e.orig)
    return {i: busy() for i, _ in rows}


@dataclass
class _Chain:
    """The key's stored certificates near the batch, plus the batch's items accepted so far."""

    by_id: dict[str, Any] = field(default_factory=dict)
    by_sequence: dict[int, Any] = field(default_factory=dict)
    by_previous: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Any, kid: str) -> None:
        self.by_id[row.certificate_id] = row
        if row.station_kid == kid:
            self.by_sequence[row.sequence] = row
            if row.previous is not None:
                self.by_previous[row.previous] = row

    def decide(self, row: CertificateRow) -> Stored:
        """What storing ``row`` next means (as :func:`hub.ingest._store` decides for one)."""
        existing = self.by_id.get(row.certificate_id)
        if existing is not None:
            if existing.digest == row.digest:
                return Stored(False, row)
            raise Conflict(
                f"certificate {row.certificate_id} is already stored with different content",
                code="id_conflict",
            )
        twin = self.by_previous.get(row.previous) if row.previous is not None else None
        check_links(row, self.by_sequence, twin)
        self.add(row, row.station_kid)
        return Stored(True, row)


def _store_batch(
    hub: Hub, station: StationInfo, rows: list[tuple[int, CertificateRow]]
) -> dict[int, Stored | HubError]:
    with hub.write_engine.begin() as conn:
        if hub.postgres:
            conn.execute(_LOCK_PG, {"pk": station.pk})
        chain = _near(conn, station.kid, [r for _, r in rows])
        decided: dict[int, Stored | HubError] = {}
        for i, row in rows:
            try:
                decided[i] = chain.decide(row)
            except HubError as e:
                decided[i] = e
        new = [s.row for s in decided.values() if isinstance(s, Stored) and s.created]
        if not new:
            return decided
        now = utcnow()
        values = []
        for row in new:
            row.received_at = now
            values.append({name: getattr(row, name) for name in _COLUMNS})
        if hub.postgres:  # stored and queued; appended after commit (hub.logwriter)
            conn.execute(_INSERT_QUEUED, values)
            return decided
        conn.execute(_INSERT, values)
        appended = hub.log.writer.append_queued(conn, [(r.certificate_id, r.digest) for r in new])
    return {i: _with_append(s, appended) for i, s in decided.items()}


def _with_append(outcome: Stored | HubError, appended: Any) -> Stored | HubError:
    if isinstance(outcome, Stored) and outcome.created:
        return Stored(True, outcome.row, appended)
    return outcome


def _near(conn: Connection, kid: str, rows: list[CertificateRow]) -> _Chain:
    seqs = sorted({s for r in rows for s in (r.sequence - 1, r.sequence, r.sequence + 1)})
    params: Mapping[str, Any] = {
        "cids": [r.certificate_id for r in rows],
        "kid": kid,
        "seqs": seqs,
        "prevs": [r.previous for r in rows if r.previous is not None],
    }
    chain = _Chain()
    for r in conn.execute(_NEAR_MANY, params):
        chain.add(r, kid)
    return chain


def _with_proofs(hub: Hub, stored: list[Stored]) -> dict[int, Stored]:
    """Each stored item with its inclusion proof (by ``id()`` of the item): one append of the log
    for the whole batch, and what another hub process appended read in one go."""
    if not stored:
        return {}
    ids = [s.row.certificate_id for s in stored]
    logged = hub.log.ensure_logged_many(ids, {s.row.certificate_id for s in stored if s.created})
    proofs = hub.log.proofs(
        [(s.row.certificate_id, s.row.digest, logged[s.row.certificate_id]) for s in stored]
    )
    return {
        id(s): Stored(s.created, s.row, s.appended, proof) for s, proof in zip(stored, proofs, strict=True)
    }


def result_json(result: Result, stored_json: Callable[[Stored], dict[str, Any]]) -> dict[str, Any]:
    """One item of the answer: ``status`` (the HTTP status a single upload would have had) and
    the body it would have had; ``retry_after`` for a transient failure."""
    out: dict[str, Any] = {"certificate_id": result.certificate_id, "http_status": result.status}
    if result.stored is not None:
        return out | stored_json(result.stored)
    assert result.error is not None
    out |= result.error.to_json()
    retry = getattr(result.error, "retry_after", None)
    if retry is not None:
        out["retry_after"] = retry
    return out
