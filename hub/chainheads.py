"""Signed chain heads: stations publish them at every sync, the hub keeps every one and serves them.

A chain head (:mod:`certs.chainhead`) says "station S's key K had issued certificates up to number N,
whose hash is H, at time T", signed by K.  The hub accepts one when

* it is signed by the key of the station whose token sends it, as that station's id;
* it verifies as an auditor holding only the organisation key would check it (the endorsement in its
  protected header; the organisation's revocation list applies);
* it does not go backwards: a head naming a lower number than one already published by this key is
  refused (``chain_head_regression``), and one naming a number the hub holds a certificate for must
  name that certificate's hash (else ``chain_fork``: two branches of one chain);

and stores it unchanged.  Heads are append-only: nothing updates or deletes them.  The same head sent
again is 200.  Heads of one key are serialised like its certificates (the station's row lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select

from certs.chainhead import ChainHead, read_chain_head
from certs.errors import CertError
from hub.db import CertificateRow, ChainHeadRow, Station, utcnow
from hub.errors import Conflict, Forbidden, NotFound, Rejected
from hub.signed import read_signed

if TYPE_CHECKING:
    from hub.service import Hub, StationInfo

MAX_CHAIN_HEAD_BYTES = 64 * 1024

_LOCK = select(Station.id).where(Station.id == bindparam("pk")).with_for_update()
_SAME = select(ChainHeadRow.id).where(ChainHeadRow.body_sha256 == bindparam("sha"))
_HIGHEST = select(func.max(ChainHeadRow.sequence)).where(ChainHeadRow.station_kid == bindparam("kid"))
_STORED = select(CertificateRow.digest).where(
    CertificateRow.station_kid == bindparam("kid"), CertificateRow.sequence == bindparam("seq")
)
_INSERT = insert(ChainHeadRow)


def _checked(hub: Hub, station: StationInfo, body: bytes) -> ChainHead:
    head = read_signed(read_chain_head, body, MAX_CHAIN_HEAD_BYTES, "chain head")
    if head.station_kid != station.kid or head.station_id != station.station_id:
        raise Forbidden(
            f"signed by key {head.station_kid[:16]} as {head.station_id!r}, not by this station's key "
            f"{station.kid[:16]} as {station.station_id!r}",
            code="foreign_signature",
        )
    try:
        hub.verifier_for(station.pk).trust.check(head.envelope, head.station_id, head.issued_at)
    except CertError as e:
        raise Rejected(f"the chain head does not verify: {e.message}", code=e.reason) from e
    return head


def publish(hub: Hub, station: StationInfo, body: bytes) -> tuple[bool, ChainHead]:
    """Store a chain head the station signed; (False, head) when these exact bytes were stored."""
    head = _checked(hub, station, body)
    sha = hashlib.sha256(body).hexdigest()
    with hub.write_engine.begin() as conn:
        if hub.postgres:
            conn.execute(_LOCK, {"pk": station.pk})
        if conn.execute(_SAME, {"sha": sha}).first() is not None:
            return False, head
        highest = conn.execute(_HIGHEST, {"kid": head.station_kid}).scalar()
        if highest is not None and head.sequence < highest:
            raise Conflict(
                f"this key already published #{highest}; a head naming #{head.sequence} goes backwards",
                code="chain_head_regression",
            )
        stored = conn.execute(_STORED, {"kid": head.station_kid, "seq": head.sequence}).scalar()
        if stored is not None and stored != head.sha256:
            raise Conflict(
                f"the hub holds another certificate #{head.sequence} of this key ({stored[:16]}): "
                "this head names another branch of the chain",
                code="chain_fork",
            )
        conn.execute(_INSERT, _row(station, head, body, sha))
    return True, head


def _row(station: StationInfo, head: ChainHead, body: bytes, sha: str) -> dict[str, Any]:
    return {
        "station_pk": station.pk,
        "station_kid": head.station_kid,
        "sequence": head.sequence,
        "digest": head.sha256,
        "issued_at": head.issued_at,
        "body": body,
        "body_sha256": sha,
        "received_at": utcnow(),
    }


def heads_of(hub: Hub, kid: str, limit: int = 1000) -> list[ChainHeadRow]:
    """The heads a station key published, newest first (public: no personal data)."""
    kid = kid.strip().lower()
    with hub.read_session() as s:
        rows = list(
            s.scalars(
                select(ChainHeadRow)
                .where(ChainHeadRow.station_kid == kid)
                .order_by(ChainHeadRow.sequence.desc(), ChainHeadRow.id.desc())
                .limit(limit)
            )
        )
    if not rows:
        raise NotFound(f"no chain head of station key {kid[:64]!r} on this hub")
    return rows
