"""Administration: organisations, station enrolment, tokens, revocation, removal of personal data.

Identity rules (hub/README.md, "Identity and revocation"):

* a station **is** its key fingerprint (``kid``); its id (``bench-1``) is a name, unique among the
  organisation's stations that are not revoked.  Enrolling a second key under an active id of the
  same organisation is refused unless ``replace=True`` (``station-hub enroll --replace``), which
  revokes the old key with the reason "replaced by key ..." in the same transaction;
* ``token`` and ``revoke`` take a key fingerprint (or a unique prefix of one, 8 hex digits or more),
  or a station id that names exactly one key; an ambiguous id is refused with the candidates;
* a revoked station stays revoked: ``token`` refuses it (enroll a new key instead);
* tokens may expire; revocations record their time and reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certs.errors import CertError, KeyStoreError
from certs.keys import (
    ROLE_ORGANISATION,
    ROLE_STATION,
    Endorsement,
    parse_time,
    read_endorsement,
    read_public_pem,
)
from certs.limits import ORGANISATION_NAME_MAX
from certs.revocation import read_revocation_list
from hub.db import CertificateRow, Organisation, Station
from hub.errors import AdminError, NotFound

_KID_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")


def new_token_value() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the hub stores of a token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def add_organisation(s: Session, name: str, pem: bytes) -> tuple[int, str]:
    name = name.strip()
    if not name:
        raise AdminError("the organisation needs a name")
    if len(name) > ORGANISATION_NAME_MAX:
        raise AdminError(f"the organisation's name is limited to {ORGANISATION_NAME_MAX} characters")
    if b"PRIVATE KEY" in pem:
        raise AdminError("this is a private key: register the organisation's public key only")
    try:
        info = read_public_pem(pem, "the key file")
    except KeyStoreError as e:
        raise AdminError(e.message) from e
    if info.role != ROLE_ORGANISATION:
        raise AdminError(
            f"this is a {info.role} key (Tabula-Role: {info.role}): register the organisation's key",
            hint="station keys export --org, on the organisation's machine",
        )
    kid = info.kid
    with s, s.begin():
        existing = s.scalar(select(Organisation).where(Organisation.kid == kid))
        if existing is not None:
            raise AdminError(f"this key is already registered for {existing.name!r}")
        org = Organisation(name=name, kid=kid, public_pem=pem.decode("ascii"))
        s.add(org)
        s.flush()
        return org.id, kid


def enroll(
    s: Session, endorsement: bytes, *, replace: bool = False, expires: datetime | None = None
) -> tuple[Station, Organisation, str]:
    """Enroll the station an organisation endorsed; returns it, its organisation and its token."""
    e = _valid_endorsement(endorsement)
    token = new_token_value()
    with s, s.begin():
        org = s.scalar(select(Organisation).where(Organisation.kid == e.org_kid))
        if org is None:
            raise AdminError(
                f"the endorsement is signed by key {e.org_kid[:16]}, which is not a registered organisation",
                hint="register the organisation's public key first: station-hub org add",
            )
        _not_revoked_by(org, e)
        if s.scalar(select(Station).where(Station.kid == e.station_kid)) is not None:
            raise AdminError(
                f"station key {e.station_kid[:16]} is already enrolled",
                hint="use 'station-hub token' to issue it a new token",
            )
        active = s.scalar(
            select(Station).where(
                Station.organisation_id == org.id,
                Station.station_id == e.station_id,
                Station.revoked_at.is_(None),
            )
        )
        if active is not None:
            if not replace:
                raise AdminError(
                    f"{org.name!r} already has an active station {e.station_id!r} (key {active.kid[:16]})",
                    hint="revoke it first, or enroll with --replace to revoke it and enroll this key",
                )
            active.revoked_at = datetime.now(UTC)
            active.revocation_reason = f"replaced by key {e.station_kid}"
            s.flush()
        st = Station(
            station_id=e.station_id,
            kid=e.station_kid,
            organisation_id=org.id,
            endorsement=json.dumps(e.envelope.to_json(), sort_keys=True),
            token_sha256=token_hash(token),
            token_expires_at=expires,
        )
        s.add(st)
        s.flush()
    return st, org, token


def _valid_endorsement(data: bytes) -> Endorsement:
    """An endorsement a station may be enrolled with: valid, of a station key, not expired."""
    try:
        e = read_endorsement(data)
    except CertError as err:
        raise AdminError(f"not a valid endorsement: {err.message}") from err
    if e.role != ROLE_STATION:
        raise AdminError(f"this endorsement is of a {e.role} key: only station keys are enrolled")
    now = datetime.now(UTC)
    if e.not_after is not None and now > parse_time(e.not_after, "not_after"):
        raise AdminError(
            f"this endorsement of {e.station_id!r} expired on {e.not_after}",
            hint="endorse the station key again (station keys endorse), then enroll with the new endorsement",
        )
    return e


def _not_revoked_by(org: Organisation, e: Endorsement) -> None:
    """Refuse a station key the organisation's signed revocation list withdraws."""
    if org.revocation_list is None:
        return
    rl = read_revocation_list(org.revocation_list)
    for r in rl.revoked:
        if r.kid in (e.station_kid, e.org_kid):
            raise AdminError(
                f"key {r.kid[:16]} is revoked by {org.name!r}'s signed revocation list "
                f"from {r.revoked_at} ({r.reason})"
            )


def resolve(s: Session, ref: str) -> Station:
    """The one station ``ref`` names: a key fingerprint (or unique prefix), else a station id."""
    ref = ref.strip()
    rows: list[Station] = []
    if _KID_PREFIX.match(ref):
        rows = list(s.scalars(select(Station).where(Station.kid.startswith(ref))))
    if not rows:
        rows = list(s.scalars(select(Station).where(Station.station_id == ref)))
    if not rows:
        raise AdminError(f"no enrolled station {ref!r} (give its key fingerprint or its id)")
    if len(rows) > 1:
        listed = "; ".join(_describe(s, r) for r in rows)
        raise AdminError(
            f"{ref!r} names {len(rows)} station keys: {listed}",
            hint="give the key fingerprint of the one you mean",
        )
    return rows[0]


def _describe(s: Session, st: Station) -> str:
    org = s.get(Organisation, st.organisation_id)
    state = f"revoked {st.revoked_at:%Y-%m-%d}" if st.revoked_at else "active"
    return f"{st.kid} ({st.station_id} of {org.name if org else '?'}, {state})"


def new_token(s: Session, ref: str, *, expires: datetime | None = None) -> str:
    """Replace a station's token (the old one stops working at once).  Never un-revokes."""
    token = new_token_value()
    with s, s.begin():
        st = resolve(s, ref)
        if st.revoked_at is not None:
            raise AdminError(
                f"station key {st.kid[:16]} ({st.station_id}) was revoked on {st.revoked_at:%Y-%m-%d}: "
                "a revoked key gets no token",
                hint="enroll a new key for this station (station keys init, endorse, station-hub enroll)",
            )
        st.token_sha256 = token_hash(token)
        st.token_expires_at = expires
    return token


def revoke(s: Session, ref: str, reason: str = "", since: datetime | None = None) -> Station:
    """Revoke a station key.  ``since``: when it stopped being trustworthy (e.g. the day it was
    stolen), if before now: certificates signed after that are flagged by every lookup."""
    now = datetime.now(UTC)
    if since is not None and since > now:
        raise AdminError("a revocation cannot take effect in the future")
    with s, s.begin():
        st = resolve(s, ref)
        if st.revoked_at is not None:
            raise AdminError(f"station key {st.kid[:16]} was already revoked on {st.revoked_at:%Y-%m-%d}")
        st.revoked_at = since or now
        st.revocation_reason = reason.strip() or "revoked by the administrator"
    return st


def list_stations(s: Session) -> list[dict[str, Any]]:
    with s:
        rows = s.execute(select(Station, Organisation).join(Organisation).order_by(Station.id)).all()
        return [
            {
                "station_id": st.station_id,
                "kid": st.kid,
                "organisation": org.name,
                "organisation_kid": org.kid,
                "revoked": st.revoked_at is not None,
                "revoked_at": st.revoked_at.isoformat() if st.revoked_at else None,
                "revocation_reason": st.revocation_reason,
                "token_expires_at": st.token_expires_at.isoformat() if st.token_expires_at else None,
                "enrolled_at": st.created_at.isoformat(),
            }
            for st, org in rows
        ]


def redact(s: Session, cert_id: str) -> CertificateRow:
    """Drop the stored signed copy (it holds the donor's and technician's names); keep the facts.

    The certificate's SHA-256 (the chain link and the QR code's hash) and the non-personal facts stay,
    so the chain still checks and the donor's own copy (PDF or JSON) still verifies against the hash.
    """
    with s, s.begin():
        row = s.get(CertificateRow, cert_id)
        if row is None:
            raise NotFound(f"no certificate {cert_id} on this hub")
        if row.redacted_at is None:
            row.body = b""
            row.redacted_at = datetime.now(UTC)
    return row
