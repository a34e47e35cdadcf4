"""Staff tokens: people, not stations.  Two roles:

* ``staff``: an organisation's lots (create, close, register devices, record events, donor links,
  the staff pages, lot reports);
* ``coordinator``: the network statistics (``/stats``); with an organisation, that organisation's,
  without one, every organisation's (a network coordinator).  A coordinator with an organisation
  may also do what staff do in it.

Tokens are random (256 bits), shown once (``station-hub staff add``), stored as SHA-256 only, like
station tokens; they may expire and are revoked by ``station-hub staff revoke``.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hub.admin import new_token_value, token_hash
from hub.db import Organisation, StaffInfo, StaffToken
from hub.errors import AdminError, Forbidden, Unauthorized
from hub.lotfacts import ROLES

_AUTH = (
    select(
        StaffToken.id,
        StaffToken.name,
        StaffToken.role,
        StaffToken.organisation_id,
        StaffToken.token_sha256,
        StaffToken.expires_at,
        StaffToken.revoked_at,
        Organisation.name.label("organisation"),
    )
    .outerjoin(Organisation, Organisation.id == StaffToken.organisation_id)
    .where(StaffToken.token_sha256 == bindparam("digest"))
)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def add_staff(
    s: Session, name: str, role: str, org_kid: str | None, *, expires: datetime | None = None
) -> tuple[StaffToken, str]:
    """A new staff token for ``name`` (a person or a desk), returned once with its token."""
    name = name.strip()
    if not name or len(name) > 200:
        raise AdminError("a staff token is named after who holds it (1 to 200 characters)")
    if role not in ROLES:
        raise AdminError(f"the role is one of {', '.join(ROLES)}")
    if role == "staff" and org_kid is None:
        raise AdminError("a staff token belongs to an organisation (--org KID)")
    token = new_token_value()
    with s, s.begin():
        org_id = None
        if org_kid is not None:
            org = s.scalar(select(Organisation).where(Organisation.kid == org_kid.strip().lower()))
            if org is None:
                raise AdminError(f"no organisation with key {org_kid[:64]!r} (station-hub org add)")
            org_id = org.id
        row = StaffToken(
            name=name, role=role, organisation_id=org_id, token_sha256=token_hash(token), expires_at=expires
        )
        s.add(row)
        s.flush()
    return row, token


def revoke_staff(s: Session, token_id: int) -> StaffToken:
    with s, s.begin():
        row = s.get(StaffToken, token_id)
        if row is None:
            raise AdminError(f"no staff token #{token_id} (station-hub staff list)")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
    return row


def list_staff(s: Session) -> list[dict[str, Any]]:
    with s:
        rows = s.execute(
            select(StaffToken, Organisation.name)
            .outerjoin(Organisation, Organisation.id == StaffToken.organisation_id)
            .order_by(StaffToken.id)
        ).all()
        return [
            {
                "id": t.id,
                "name": t.name,
                "role": t.role,
                "organisation": org or "(network)",
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t, org in rows
        ]


def authenticate_staff(engine: Engine, digest: str) -> StaffInfo | None:
    """The staff token with this SHA-256 (None: no such token); expired or revoked ones refused."""
    with engine.connect() as conn:
        hit = conn.execute(_AUTH, {"digest": digest}).first()
    if hit is None or not hmac.compare_digest(hit.token_sha256, digest):
        return None
    if hit.revoked_at is not None:
        raise Unauthorized("this staff token was revoked", code="token_revoked")
    if hit.expires_at is not None and _aware(hit.expires_at) <= datetime.now(UTC):
        raise Unauthorized("this staff token has expired", code="token_expired", hint="ask for a new one")
    return StaffInfo(hit.id, hit.name, hit.role, hit.organisation_id, hit.organisation)


def staff_organisation(actor: StaffInfo) -> int:
    """The organisation a staff token may manage lots of (Forbidden for a network coordinator)."""
    if actor.organisation_id is None:
        raise Forbidden(
            "a network coordinator's token reads statistics; lots are managed by an organisation's staff",
            code="wrong_role",
        )
    return actor.organisation_id
