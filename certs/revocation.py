"""Revocation lists: an organisation withdraws its trust in a key from a given time.

A revocation list is a JWS (``typ: tabula-revocation+json``) signed by an organisation key, whose
payload is ``tabula.revocation/1``::

    {
      "schema": "tabula.revocation/1",
      "organisation": "Atelier Réemploi",
      "issued_at": "2026-03-01T10:00:00Z",
      "revoked": [
        {"kid": "<64 hex: SHA-256 of the key's SPKI DER>", "revoked_at": "2026-02-27T00:00:00Z",
         "reason": "key_compromise", "comment": "bench-3 stolen"}
      ]
    }

``reason`` is one of :data:`REASONS` (the RFC 5280 reasons that apply to a signing key); ``comment`` is
free text.  ``station keys revoke`` makes a list or extends one (each key appears once; the list is
signed again with a new ``issued_at``).  ``station verify --trust DIR`` reads every revocation list in
DIR signed by a trusted organisation key: a certificate signed by a revoked key (or endorsed by a
revoked organisation key) at or after ``revoked_at`` is refused (``revoked_key``); one signed before
is valid, with a note.  "Signed at" is the certificate's signed ``issued_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from certs.canonical import parse_json, shown
from certs.errors import KeyStoreError, SchemaError
from certs.jws import TYP_REVOCATION, Envelope, parse_envelope, sign
from certs.keys import ROLE_ORGANISATION, SigningKey, format_time, parse_time

REVOCATION_SCHEMA = "tabula.revocation/1"
REASONS = ("unspecified", "key_compromise", "superseded", "cessation_of_operation", "affiliation_changed")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_KEYS = frozenset({"kid", "revoked_at", "reason", "comment"})
_LIST_KEYS = frozenset({"schema", "organisation", "issued_at", "revoked"})


@dataclass(frozen=True)
class Revocation:
    """One revoked key: trust in ``kid`` ends at ``revoked_at`` (by the organisation key ``by_kid``)."""

    kid: str
    revoked_at: str
    reason: str
    comment: str
    by_kid: str = ""
    organisation: str = ""

    @property
    def when(self) -> datetime:
        return parse_time(self.revoked_at, "revoked_at")

    def to_json(self) -> dict[str, str]:
        return {
            "kid": self.kid,
            "revoked_at": self.revoked_at,
            "reason": self.reason,
            "comment": self.comment,
        }


@dataclass(frozen=True)
class RevocationList:
    organisation: str
    issued_at: str
    revoked: tuple[Revocation, ...]
    envelope: Envelope

    @property
    def org_kid(self) -> str:
        return self.envelope.kid


def _entry(raw: Any, by_kid: str, organisation: str) -> Revocation:
    if not isinstance(raw, dict) or set(raw) != _ENTRY_KEYS:
        raise SchemaError("a revocation entry is exactly {kid, revoked_at, reason, comment}")
    if not isinstance(raw["kid"], str) or not _HEX64.match(raw["kid"]):
        raise SchemaError(f"revoked kid must be 64 lowercase hex characters, got {shown(raw['kid'])}")
    parse_time(raw["revoked_at"], "revoked_at")
    if raw["reason"] not in REASONS:
        raise SchemaError(f"unknown revocation reason {shown(raw['reason'])} (one of {', '.join(REASONS)})")
    if not isinstance(raw["comment"], str):
        raise SchemaError("a revocation comment is a string")
    return Revocation(raw["kid"], raw["revoked_at"], raw["reason"], raw["comment"], by_kid, organisation)


def read_revocation_list(data: Any) -> RevocationList:
    """Parse and check a revocation list's signature and content (not whether its signer is trusted)."""
    env = parse_envelope(data, expect=TYP_REVOCATION)
    env.verify_signature()
    payload = parse_json(env.payload_bytes, "revocation list")
    if not isinstance(payload, dict) or set(payload) != _LIST_KEYS or payload["schema"] != REVOCATION_SCHEMA:
        raise SchemaError(f"not a {REVOCATION_SCHEMA} list")
    if not isinstance(payload["organisation"], str) or not isinstance(payload["revoked"], list):
        raise SchemaError("a revocation list names its organisation and lists revoked keys")
    parse_time(payload["issued_at"], "issued_at")
    entries = tuple(_entry(r, env.kid, payload["organisation"]) for r in payload["revoked"])
    if len({e.kid for e in entries}) != len(entries):
        raise SchemaError("a revocation list names each key once")
    return RevocationList(payload["organisation"], payload["issued_at"], entries, env)


def revoke(
    org: SigningKey,
    kid: str,
    *,
    reason: str,
    comment: str = "",
    at: datetime | None = None,
    existing: RevocationList | None = None,
) -> Envelope:
    """A new revocation list: ``existing`` (if any, signed by ``org``) plus ``kid`` revoked from ``at``."""
    if org.key_role != ROLE_ORGANISATION:
        raise KeyStoreError("only an organisation key signs revocation lists")
    if not _HEX64.match(kid):
        raise KeyStoreError(f"{kid!r} is not a key fingerprint (64 lowercase hex characters)")
    if reason not in REASONS:
        raise KeyStoreError(f"unknown revocation reason {reason!r}", hint="one of: " + ", ".join(REASONS))
    entries = list(existing.revoked) if existing is not None else []
    if existing is not None and existing.org_kid != org.kid:
        raise KeyStoreError("this revocation list was signed by another organisation key")
    if any(e.kid == kid for e in entries):
        raise KeyStoreError(f"key {kid[:16]} is already revoked in this list")
    now = datetime.now(UTC)
    entries.append(Revocation(kid, format_time(at or now), reason, comment))
    payload = {
        "schema": REVOCATION_SCHEMA,
        "organisation": org.name,
        "issued_at": format_time(now),
        "revoked": [e.to_json() for e in entries],
    }
    return sign(payload, org.private, TYP_REVOCATION)
