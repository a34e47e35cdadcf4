"""Signed chain heads: a station's statement "my newest certificate is number N, with this hash".

A station's certificates are numbered and hash-linked (:mod:`certs.sequence`), so a deleted
certificate leaves a gap, except the newest: nothing after it says it existed.  At every sync the
station signs a chain head with its station key and publishes it to the hub, which keeps every head
(append-only) and serves them; the station keeps the latest it published as ``chain-head.json`` in its
certificate directory.  ``station verify --chain DIR --chain-head FILE`` then reveals a deleted newest
certificate (the head names number N; the folder's highest is lower) and a folder holding another
branch of a fork (the folder's number N has another hash).

A chain head is a JWS, ``typ: tabula-chain-head+json``, signed by the station key, with the station's
endorsement in its protected header (as certificates carry it), payload ``tabula.chain-head/1``::

    {"schema": "tabula.chain-head/1", "station_id": "bench-1", "station_kid": "<64 hex>",
     "sequence": 42, "sha256": "<hash of certificate 42>", "issued_at": "2026-12-01T10:00:00Z"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from certs.canonical import MAX_SAFE_INT, parse_json, shown
from certs.errors import KeyStoreError, MalformedEnvelope, SchemaError, SequenceError
from certs.jws import TYP_CHAIN_HEAD, Envelope, parse_envelope, sign
from certs.keys import SigningKey, check_station_id, format_time, parse_time
from certs.sequence import STATE_FILE, SequenceState

CHAIN_HEAD_SCHEMA = "tabula.chain-head/1"
#: The latest head a station published, kept in its certificate directory.
CHAIN_HEAD_FILE = "chain-head.json"
_SUFFIX = ".chain-head.json"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = frozenset({"schema", "station_id", "station_kid", "sequence", "sha256", "issued_at"})


def is_chain_head_file(name: str) -> bool:
    """``chain-head.json`` or ``<anything>.chain-head.json``: what ``station verify`` reads as a head."""
    lower = name.lower()
    return lower == CHAIN_HEAD_FILE or lower.endswith(_SUFFIX)


@dataclass(frozen=True)
class ChainHead:
    station_id: str
    station_kid: str
    sequence: int
    sha256: str
    issued_at: str
    envelope: Envelope

    def describe(self) -> str:
        return (
            f"station {self.station_id} published #{self.sequence} ({self.sha256[:16]}) at {self.issued_at}"
        )


def sign_chain_head(
    station: SigningKey,
    sequence: int,
    digest: str,
    *,
    endorsement: dict[str, Any] | None = None,
    when: datetime | None = None,
) -> Envelope:
    """The signed head of ``station``'s chain: certificate ``sequence`` has hash ``digest``."""
    if station.role != "station":
        raise KeyStoreError("only a station key signs its chain head")
    payload = {
        "schema": CHAIN_HEAD_SCHEMA,
        "station_id": station.name,
        "station_kid": station.kid,
        "sequence": sequence,
        "sha256": digest,
        "issued_at": format_time(when or datetime.now(UTC)),
    }
    return sign(payload, station.private, TYP_CHAIN_HEAD, endorsement=endorsement)


def read_chain_head(data: Any) -> ChainHead:
    """Parse a chain head and check its signature (not whether its key is trusted: the caller's
    :meth:`certs.trust.TrustStore.check` decides that, with the endorsement it carries)."""
    env = parse_envelope(data, expect=TYP_CHAIN_HEAD)
    env.verify_signature()
    payload = parse_json(env.payload_bytes, "chain head")
    if not isinstance(payload, dict) or set(payload) != _KEYS or payload["schema"] != CHAIN_HEAD_SCHEMA:
        raise SchemaError(f"not a {CHAIN_HEAD_SCHEMA} statement")
    seq, digest, station_id = payload["sequence"], payload["sha256"], payload["station_id"]
    if type(seq) is not int or not 1 <= seq <= MAX_SAFE_INT:
        raise SchemaError(f"a chain head's sequence is an integer from 1, got {shown(seq)}")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise SchemaError("a chain head's sha256 is 64 lowercase hex characters")
    if payload["station_kid"] != env.kid:
        raise SchemaError("the chain head names another key than the one that signed it")
    try:
        check_station_id(station_id if isinstance(station_id, str) else "")
    except KeyStoreError as e:
        raise SchemaError(f"chain head: {e.message}") from e
    parse_time(payload["issued_at"], "issued_at")
    return ChainHead(station_id, env.kid, seq, digest, payload["issued_at"], env)


def newest_certificate(key_dir: Path) -> tuple[int, str] | None:
    """The station's newest committed certificate (number, hash) from its sequence state; None if none.

    Read without taking the sequence lock: the state file is replaced atomically, and a pending
    issuance is not committed yet, so it is not named.
    """
    path = key_dir / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        state = SequenceState.from_json(parse_json(data, str(path)), str(path))
    except MalformedEnvelope as e:
        raise SequenceError(f"{path} is corrupt: {e.message}") from e
    if state.sequence == 0 or state.last_digest is None:
        return None
    return state.sequence, state.last_digest
