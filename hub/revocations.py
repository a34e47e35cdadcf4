"""Organisation-signed revocation lists, held and served byte for byte.

Two kinds of revocation exist, and the hub keeps them apart:

* **the hub's own records** (``station-hub revoke``, ``stations.revoked_at``): the hub administrator
  stops a station key from uploading and flags what it signed afterwards in lookups.  Published at
  ``/api/v1/organisations/{kid}/revocations.json`` (unsigned: the hub's word);
* **the organisation's signed revocation list** (``station keys revoke``, :mod:`certs.revocation`): the
  organisation's own statement, which ``station verify --trust`` honours offline.  The hub accepts a
  list signed by the registered organisation key and newer than the one it holds (``issued_at``), by
  ``station-hub org revocations FILE`` or ``PUT /api/v1/organisations/{kid}/revocations.jws`` (the
  signature is the authentication: nobody but the organisation can make one, and an older list cannot
  replace a newer one), and serves the exact bytes at ``.../revocations.jws``.  The hub's verifier
  applies it to uploads and lookups from then on.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from certs.keys import parse_time
from certs.revocation import RevocationList, read_revocation_list
from hub.db import Organisation, utcnow
from hub.errors import Conflict, NotFound, Rejected
from hub.signed import read_signed

if TYPE_CHECKING:
    from hub.service import Hub

MAX_LIST_BYTES = 1024 * 1024


def _read(data: bytes, org_kid: str | None) -> RevocationList:
    rl = read_signed(read_revocation_list, data, MAX_LIST_BYTES, "revocation list")
    if org_kid is not None and rl.org_kid != org_kid.strip().lower():
        raise Rejected(
            f"this list is signed by key {rl.org_kid[:16]}, not by organisation {org_kid[:16]}",
            code="wrong_organisation",
        )
    return rl


def accept(hub: Hub, data: bytes, org_kid: str | None = None) -> tuple[bool, RevocationList, str]:
    """Hold ``data`` as its organisation's newest revocation list: (new?, the list, the org's name)."""
    rl = _read(data, org_kid)
    sha = hashlib.sha256(data).hexdigest()
    with Session(hub.write_engine) as s, s.begin():  # SQLite: BEGIN IMMEDIATE; PostgreSQL: the row lock
        org = s.scalar(select(Organisation).where(Organisation.kid == rl.org_kid).with_for_update())
        if org is None:
            raise NotFound(
                f"the list is signed by key {rl.org_kid[:16]}, which is not a registered organisation"
            )
        name = org.name
        if org.revocation_list_sha256 == sha:
            return False, rl, name
        held = org.revocation_list_issued_at
        if held is not None and parse_time(rl.issued_at, "issued_at") <= parse_time(held, "issued_at"):
            raise Conflict(
                f"the hub holds a list of {name!r} issued {held}; this one was issued {rl.issued_at}",
                code="stale_revocation_list",
            )
        org.revocation_list = data
        org.revocation_list_sha256 = sha
        org.revocation_list_issued_at = rl.issued_at
        org.revocation_list_received_at = utcnow()
    hub.drop_verifiers()
    return True, rl, name


def signed_list(hub: Hub, kid: str) -> bytes:
    org, _ = hub.organisation(kid)
    if org.revocation_list is None:
        raise NotFound(f"{org.name!r} has not published a signed revocation list to this hub")
    return org.revocation_list
