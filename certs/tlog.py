"""The hub's transparency log as files: signed tree heads, inclusion proofs, consistency proofs.

The hub appends the hash of every certificate it accepts to a Merkle log (:mod:`certs.merkle`,
RFC 9162 hashing; the leaf's data is the 32 bytes of the certificate hash, the SHA-256 of the compact
JWS) and signs its tree heads with a key of its own, the **log key** (``Tabula-Role: log``).

* **Signed tree head** (STH): a JWS, ``typ: tabula-tree-head+json``, signed by the log key, payload
  ``tabula.tree-head/1``::

      {"schema": "tabula.tree-head/1", "log_id": "<kid of the log key>", "tree_size": 12,
       "root_hash": "<64 hex>", "timestamp": "2026-12-01T10:00:00.123Z"}

* **Inclusion proof** (``<id>.log.json`` next to a certificate; the hub's upload answer carries the
  same members under ``log``)::

      {"schema": "tabula.log-proof/1", "certificate_id": "...", "sha256": "<certificate hash>",
       "leaf_index": 11, "tree_size": 12, "inclusion": ["<64 hex>", ...], "tree_head": {<STH>}}

* **Consistency proof** (``GET /api/v1/log/consistency?first=M``, saved by an auditor)::

      {"schema": "tabula.log-consistency/1", "first_size": 5, "tree_size": 12,
       "consistency": ["<64 hex>", ...], "tree_head": {<STH of size 12>}}

The proof files themselves are not signed: a proof checks itself against the signed tree head.
Everything here raises a :class:`~certs.errors.LogError` (``proof_malformed``, ``proof_invalid``,
``sth_bad_signature``, ``log_key_unknown``, ``proof_mismatch``, ``inconsistent_tree``) or, for a file
that is not a JWS, :class:`~certs.errors.MalformedEnvelope`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from certs.canonical import parse_json, shown
from certs.errors import (
    BadSignature,
    InconsistentTree,
    KeyStoreError,
    LogKeyUnknown,
    MalformedEnvelope,
    ProofInvalid,
    ProofMalformed,
    ProofMismatch,
    SchemaError,
    SthBadSignature,
)
from certs.jws import TYP_TREE_HEAD, Envelope, kid_of, parse_envelope, sign
from certs.keys import ROLE_LOG, ROLE_ORGANISATION, parse_time, read_public_pem
from certs.merkle import MAX_TREE_SIZE, leaf_hash, verify_consistency, verify_inclusion

TREE_HEAD_SCHEMA = "tabula.tree-head/1"
PROOF_SCHEMA = "tabula.log-proof/1"
CONSISTENCY_SCHEMA = "tabula.log-consistency/1"
#: The inclusion proof kept next to ``<id>.json`` (and ``<id>.pdf``).
SIDECAR_SUFFIX = ".log.json"
#: A proof has at most one hash per level of the largest tree.
MAX_PROOF_HASHES = 64

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TREE_HEAD_KEYS = frozenset({"schema", "log_id", "tree_size", "root_hash", "timestamp"})
_PROOF_KEYS = frozenset(
    {"schema", "certificate_id", "sha256", "leaf_index", "tree_size", "inclusion", "tree_head"}
)
_CONSISTENCY_KEYS = frozenset({"schema", "first_size", "tree_size", "consistency", "tree_head"})

LogKeys = Mapping[str, Ed25519PublicKey]  # kid -> public key


def sidecar_name(certificate_id: str) -> str:
    return certificate_id + SIDECAR_SUFFIX


def is_sidecar(name: str) -> bool:
    return name.lower().endswith(SIDECAR_SUFFIX)


def format_timestamp(when: datetime) -> str:
    """A tree head's time: UTC with milliseconds (``2026-12-01T10:00:00.123Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def read_log_key(data: bytes, source: str) -> tuple[str, Ed25519PublicKey]:
    """A hub's log public key (``GET /api/v1/log/key.pem``): its kid and key.  A bare PEM is accepted."""
    info = read_public_pem(data, source)
    if info.role != ROLE_LOG and (info.declared or info.role != ROLE_ORGANISATION):
        raise KeyStoreError(f"{source} is a {info.role} key, not a hub's log key (Tabula-Role: log)")
    return info.kid, info.key


# --- signed tree heads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: str
    log_id: str  # the kid of the log key that signed it
    envelope: Envelope

    def to_json(self) -> dict[str, Any]:
        return self.envelope.to_json()

    def describe(self) -> str:
        return f"tree of {self.tree_size} signed {self.timestamp} by log key {self.log_id[:16]}"


def sign_tree_head(key: Ed25519PrivateKey, tree_size: int, root: bytes, timestamp: str) -> Envelope:
    payload = {
        "schema": TREE_HEAD_SCHEMA,
        "log_id": kid_of(key.public_key()),
        "tree_size": tree_size,
        "root_hash": root.hex(),
        "timestamp": timestamp,
    }
    return sign(payload, key, TYP_TREE_HEAD)


def _size(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofMalformed(f"{what} must be an integer from 0 to {MAX_TREE_SIZE}, got {shown(value)}")
    return value


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ProofMalformed(f"{what} must be 64 lowercase hex characters, got {shown(value)}")
    return bytes.fromhex(value)


def _hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF_HASHES:
        raise ProofMalformed(f"{what} must be a list of at most {MAX_PROOF_HASHES} hashes")
    return [_hash(h, f"{what}[{i}]") for i, h in enumerate(value)]


def read_tree_head(data: Any, keys: LogKeys) -> TreeHead:
    """Parse a signed tree head and check its signature with one of the log ``keys``."""
    try:
        env = parse_envelope(data, expect=TYP_TREE_HEAD)
    except MalformedEnvelope as e:
        raise ProofMalformed(f"not a signed tree head: {e.message}") from e
    key = keys.get(env.kid)
    if key is None:
        raise LogKeyUnknown(f"the tree head is signed by key {env.kid[:16]}, which is not the log key given")
    try:
        env.verify_signature()
    except BadSignature as e:
        raise SthBadSignature(f"the signed tree head's signature is invalid: {e.message}") from e
    try:
        payload = parse_json(env.payload_bytes, "tree head")
    except MalformedEnvelope as e:
        raise ProofMalformed(e.message) from e
    if (
        not isinstance(payload, dict)
        or set(payload) != _TREE_HEAD_KEYS
        or payload["schema"] != TREE_HEAD_SCHEMA
    ):
        raise ProofMalformed(f"the tree head is not a {TREE_HEAD_SCHEMA} statement")
    if payload["log_id"] != env.kid:
        raise ProofMalformed("the tree head's log_id is not the key that signed it")
    try:
        parse_time(payload["timestamp"], "timestamp")
    except SchemaError as e:
        raise ProofMalformed(f"tree head: {e.message}") from e
    size = _size(payload["tree_size"], "tree_size")
    return TreeHead(size, _hash(payload["root_hash"], "root_hash"), payload["timestamp"], env.kid, env)


# --- inclusion proofs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogProof:
    """An inclusion proof as read (not yet checked): see the module docstring."""

    certificate_id: str
    sha256: str
    leaf_index: int
    tree_size: int
    inclusion: list[bytes]
    tree_head: Any  # the STH as JSON, checked by check_inclusion

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": PROOF_SCHEMA,
            "certificate_id": self.certificate_id,
            "sha256": self.sha256,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "inclusion": [h.hex() for h in self.inclusion],
            "tree_head": self.tree_head,
        }


def _document(data: Any, what: str) -> Any:
    if isinstance(data, (bytes, str)):
        if len(data) > 1024 * 1024:
            raise ProofMalformed(f"{len(data)} bytes: too large to be a {what}")
        try:
            return parse_json(data, what)
        except MalformedEnvelope as e:
            raise ProofMalformed(e.message) from e
    return data


def read_log_proof(data: Any) -> LogProof:
    """Parse an inclusion proof file (bytes, str or decoded JSON), strictly."""
    doc = _document(data, "inclusion proof")
    if not isinstance(doc, dict) or set(doc) != _PROOF_KEYS or doc["schema"] != PROOF_SCHEMA:
        raise ProofMalformed(f"not a {PROOF_SCHEMA} document")
    cid = doc["certificate_id"]
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ProofMalformed(f"certificate_id must be a lowercase UUID, got {shown(cid)}")
    index, size = _size(doc["leaf_index"], "leaf_index"), _size(doc["tree_size"], "tree_size")
    if index >= size:
        raise ProofMalformed(f"leaf {index} cannot be in a tree of {size}")
    digest = _hash(doc["sha256"], "sha256").hex()
    return LogProof(cid, digest, index, size, _hashes(doc["inclusion"], "inclusion"), doc["tree_head"])


def check_inclusion(proof: LogProof, digest: str, keys: LogKeys) -> TreeHead:
    """Check that the certificate whose hash is ``digest`` is in the log the proof's tree head signs."""
    if proof.sha256 != digest:
        raise ProofMismatch(
            f"the proof is for certificate hash {proof.sha256[:16]}, this certificate's is {digest[:16]}"
        )
    head = read_tree_head(proof.tree_head, keys)
    if head.tree_size != proof.tree_size:
        raise ProofInvalid(
            f"the proof is for a tree of {proof.tree_size}, its tree head says {head.tree_size}"
        )
    leaf = leaf_hash(bytes.fromhex(digest))
    if not verify_inclusion(proof.leaf_index, proof.tree_size, leaf, proof.inclusion, head.root_hash):
        raise ProofInvalid(
            f"the inclusion proof of leaf {proof.leaf_index} does not lead to the root of the signed "
            f"tree of {head.tree_size}"
        )
    return head


# --- consistency proofs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyFile:
    first_size: int
    tree_size: int
    consistency: list[bytes]
    tree_head: Any


def read_consistency(data: Any) -> ConsistencyFile:
    doc = _document(data, "consistency proof")
    if not isinstance(doc, dict) or set(doc) != _CONSISTENCY_KEYS or doc["schema"] != CONSISTENCY_SCHEMA:
        raise ProofMalformed(f"not a {CONSISTENCY_SCHEMA} document")
    first, size = _size(doc["first_size"], "first_size"), _size(doc["tree_size"], "tree_size")
    return ConsistencyFile(first, size, _hashes(doc["consistency"], "consistency"), doc["tree_head"])


def tree_head_of(data: Any, keys: LogKeys) -> tuple[TreeHead, ConsistencyFile | None]:
    """The signed tree head a file holds: an STH itself, an inclusion proof, or a consistency proof
    (which then comes back too, for its proof)."""
    doc = _document(data, "tree head file")
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema == PROOF_SCHEMA:
        return read_tree_head(read_log_proof(doc).tree_head, keys), None
    if schema == CONSISTENCY_SCHEMA:
        found = read_consistency(doc)
        return read_tree_head(found.tree_head, keys), found
    return read_tree_head(doc, keys), None


def check_consistency(old: TreeHead, new: TreeHead, proof: list[bytes]) -> None:
    """Check that ``new`` extends ``old``: the log kept every leaf ``old`` signed, in order."""
    if old.log_id != new.log_id:
        raise LogKeyUnknown(
            f"the tree heads are signed by two different log keys ({old.log_id[:16]}, {new.log_id[:16]})"
        )
    if old.tree_size > new.tree_size:
        raise InconsistentTree(
            f"the newer tree head ({new.describe()}) is smaller than the older one ({old.describe()})"
        )
    if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof):
        same = old.tree_size == new.tree_size
        raise InconsistentTree(
            f"two different trees of {old.tree_size} leaves: the log forked"
            if same
            else f"the tree of {new.tree_size} does not extend the tree of {old.tree_size}: "
            "the log rewrote its history (or the proof is wrong)"
        )
