"""The hub's transparency log: every certificate hash it accepts, in an append-only Merkle tree.

Leaves are the certificate hashes (RFC 9162 hashing, :mod:`certs.merkle`); the log key, stored in
the database (``log_keys``, created by ``station-hub migrate``), signs every tree head
(:mod:`certs.tlog` formats).  What a store needs for proofs is kept: the hash of every complete
subtree (``log_nodes``), so any inclusion or consistency proof is one read of O(log n) rows.

**Appending, serialised.**  Ingest logs a certificate in the transaction that stores it, so a stored
certificate is always logged or queued (``log_queue``).  Appends take the log's lock.  On PostgreSQL
that is a transaction-scoped advisory lock: ingest tries it (without waiting) and, when it is free,
appends inside its own transaction (one commit per upload); when another transaction holds it,
ingest queues the certificate, commits, then waits for the lock, and whoever gets it appends
everything queued meanwhile (one transaction, one tree head, for a whole batch), so uploads of
different stations still commit in parallel.  On SQLite the ingest transaction appends
(``BEGIN IMMEDIATE`` already serialises every writer).
Whatever the number of hub processes, one leaf index is assigned once and the log never forks: the
lock is the database's, and ``log_entries.leaf_index`` and the level-0 node hashes are unique.

A crash between the two transactions leaves the certificate queued; the next append takes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import bindparam, delete, insert, select, text, tuple_, update
from sqlalchemy.engine import Connection, Engine

from certs.merkle import (
    Frontier,
    Node,
    consistency_ranges,
    frontier_nodes,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    proof_nodes,
    range_hash,
)
from certs.tlog import CONSISTENCY_SCHEMA, PROOF_SCHEMA, format_timestamp, sign_tree_head
from hub.db import CertificateRow, LogEntry, LogKey, LogNode, LogQueue, LogState
from hub.errors import HubError, NotFound

#: Leaves appended per transaction at most (a batch larger than this takes several).
BATCH = 1000
_LOCK_KEY = 0x7461_626C_6F67  # "tablog": the advisory lock of appends (PostgreSQL)


class BadLogRequest(HubError):
    code = "bad_tree_size"


@dataclass(frozen=True)
class Head:
    """The log's state as a signed tree head states it."""

    tree_size: int
    root_hash: str
    timestamp: str
    tree_head: str  # the signed tree head: JWS, JSON text

    def signed(self) -> Any:
        return json.loads(self.tree_head)


@dataclass(frozen=True)
class Appended:
    head: Head
    indexes: dict[str, int]  # certificate id -> leaf index
    nodes: dict[Node, bytes]  # the tree's right edge before, and every node appended: all the
    # proofs of the appended leaves against ``head`` need (no read, see _proof_from)

    def inclusion(self, index: int) -> list[str]:
        return [h.hex() for h in inclusion_proof(index, self.head.tree_size, self.nodes)]


_STATE = select(LogState.tree_size, LogState.root_hash, LogState.timestamp, LogState.tree_head).where(
    LogState.id == 1
)
_QUEUED = select(LogQueue.id, LogQueue.certificate_id, LogQueue.digest).order_by(LogQueue.id).limit(BATCH)
_NODES = select(LogNode.level, LogNode.idx, LogNode.hash).where(
    tuple_(LogNode.level, LogNode.idx).in_(bindparam("coords", expanding=True))
)
_INDEX = select(LogEntry.leaf_index).where(LogEntry.certificate_id == bindparam("cid"))
_BY_LEAF = select(LogNode.idx).where(LogNode.level == 0, LogNode.hash == bindparam("leaf"))
_ENTRY = select(LogEntry.certificate_id, CertificateRow.digest).join(
    CertificateRow, CertificateRow.certificate_id == LogEntry.certificate_id
)
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")
_ADD_NODES = insert(LogNode)
_ADD_ENTRIES = insert(LogEntry)
_ENQUEUE = insert(LogQueue)
_DEQUEUE = delete(LogQueue).where(LogQueue.id.in_(bindparam("ids", expanding=True)))
_SET_STATE = (
    update(LogState)
    .where(LogState.id == 1)
    .values(
        tree_size=bindparam("size"),
        root_hash=bindparam("root"),
        timestamp=bindparam("stamp"),
        tree_head=bindparam("head"),
    )
)


def _head(row: Any) -> Head:
    return Head(int(row.tree_size), row.root_hash, row.timestamp, row.tree_head)


def _nodes(conn: Connection, coords: Iterable[Node]) -> dict[Node, bytes]:
    wanted = list(coords)
    if not wanted:
        return {}
    return {(r.level, r.idx): bytes(r.hash) for r in conn.execute(_NODES, {"coords": wanted})}


class TransparencyLog:
    def __init__(self, engine: Engine, write_engine: Engine, read_engine: Engine) -> None:
        self.write_engine = write_engine
        self.read_engine = read_engine
        self.postgres = engine.dialect.name == "postgresql"
        self._key: tuple[str, Ed25519PrivateKey, str] | None = None
        # (size, root, right edge) after this process's last append; checked against the stored
        # state before use (a rolled-back append or another process's leaves make it stale).
        self._edge: tuple[int, str, dict[int, bytes]] | None = None

    # --- the key ----------------------------------------------------------------------------------

    def key(self) -> tuple[str, Ed25519PrivateKey, str]:
        """(kid, private key, public key file) of the log key; read once per process."""
        if self._key is None:
            with self.read_engine.connect() as conn:
                row = conn.execute(select(LogKey.kid, LogKey.private_pem, LogKey.public_pem)).first()
            if row is None:
                raise HubError("the database has no log key: run station-hub migrate")
            private = load_pem_private_key(row.private_pem.encode("ascii"), password=None)
            assert isinstance(private, Ed25519PrivateKey)
            self._key = (row.kid, private, row.public_pem)
        return self._key

    # --- appending --------------------------------------------------------------------------------

    def lock(self, conn: Connection) -> None:
        """Serialise appends across connections and processes (SQLite: BEGIN IMMEDIATE did)."""
        if self.postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})

    def append_or_queue(self, conn: Connection, certificate_id: str, digest: str) -> Appended | None:
        """Log a certificate stored in the caller's transaction: appended right there (with whatever
        is queued) when nobody holds the log's lock, else queued and None: :meth:`ensure_logged`
        appends it after the caller commits, batched with what others queued meanwhile.  (SQLite:
        the transaction already serialises every writer, the lock is always free.)"""
        if self.postgres and not conn.execute(_TRY_LOCK, {"k": _LOCK_KEY}).scalar():
            self.enqueue(conn, certificate_id, digest)
            return None
        return self.append_queued(conn, [(certificate_id, digest)])

    def enqueue(self, conn: Connection, certificate_id: str, digest: str) -> None:
        conn.execute(_ENQUEUE, {"certificate_id": certificate_id, "digest": digest})

    def append_queued(self, conn: Connection, extra: list[tuple[str, str]] | None = None) -> Appended | None:
        """Append up to :data:`BATCH` queued certificates (then ``extra``: (id, hash) pairs not
        queued) and sign the new tree head.  The caller holds the log's lock."""
        state = conn.execute(_STATE).one()
        queued = conn.execute(_QUEUED).all()
        leaves = [(r.certificate_id, r.digest) for r in queued] + (extra or [])
        if not leaves:
            return None
        frontier = self._frontier(conn, int(state.tree_size), state.root_hash)
        known = {(lv, ix): frontier.edge[lv] for lv, ix in frontier_nodes(frontier.size)}
        nodes: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        for cert_id, digest in leaves:
            entries.append({"leaf_index": frontier.size, "certificate_id": cert_id, "appended_at": now})
            for level, idx, h in frontier.append(leaf_hash(bytes.fromhex(digest))):
                nodes.append({"level": level, "idx": idx, "hash": h})
                known[(level, idx)] = h
        conn.execute(_ADD_NODES, nodes)
        conn.execute(_ADD_ENTRIES, entries)
        if queued:
            conn.execute(_DEQUEUE, {"ids": [row.id for row in queued]})
        head = self._sign(frontier, max(format_timestamp(now), state.timestamp))
        conn.execute(
            _SET_STATE,
            {"size": head.tree_size, "root": head.root_hash, "stamp": head.timestamp, "head": head.tree_head},
        )
        self._edge = (head.tree_size, head.root_hash, dict(frontier.edge))
        return Appended(head, {e["certificate_id"]: e["leaf_index"] for e in entries}, known)

    def _frontier(self, conn: Connection, size: int, root: str) -> Frontier:
        """The tree's right edge: remembered from this process's last append when the stored state is
        still that tree (same size and root: nodes never change), else read (O(log n) rows)."""
        cached = self._edge
        if cached is not None and cached[:2] == (size, root):
            return Frontier(size, dict(cached[2]))
        return Frontier.load(size, _nodes(conn, frontier_nodes(size)))

    def _sign(self, frontier: Frontier, stamp: str) -> Head:
        _, private, _ = self.key()
        root = frontier.root()
        env = sign_tree_head(private, frontier.size, root, stamp)
        return Head(
            frontier.size, root.hex(), stamp, json.dumps(env.to_json(), sort_keys=True, separators=(",", ":"))
        )

    def ensure_logged(self, certificate_id: str) -> tuple[int, Head]:
        """The leaf index of a stored certificate and a tree head that includes it, appending the
        queue first if it is not in the log yet."""
        with self.read_engine.connect() as conn:
            index = conn.execute(_INDEX, {"cid": certificate_id}).scalar()
            if index is not None:
                return int(index), _head(conn.execute(_STATE).one())
        with self.write_engine.begin() as conn:
            self.lock(conn)
            return self._append_until(conn, certificate_id)

    def _append_until(self, conn: Connection, certificate_id: str) -> tuple[int, Head]:
        head: Head | None = None
        requeued = False
        while True:
            index = conn.execute(_INDEX, {"cid": certificate_id}).scalar()
            if index is not None:
                return int(index), head or _head(conn.execute(_STATE).one())
            appended = self.append_queued(conn)
            if appended is not None:
                head = appended.head
                continue
            if requeued or not self._requeue(conn, certificate_id):
                raise NotFound(f"no certificate {certificate_id} on this hub")
            requeued = True

    def _requeue(self, conn: Connection, certificate_id: str) -> bool:
        """A stored certificate neither logged nor queued (a hand-made row): queue it now."""
        digest = conn.execute(
            select(CertificateRow.digest).where(CertificateRow.certificate_id == certificate_id)
        ).scalar()
        if digest is None:
            return False
        self.enqueue(conn, certificate_id, digest)
        return True

    def catch_up(self) -> int:
        """Append everything queued (after a bulk load); returns the leaves appended."""
        total = 0
        while True:
            with self.write_engine.begin() as conn:
                self.lock(conn)
                appended = self.append_queued(conn)
            if appended is None:
                return total
            total += len(appended.indexes)

    # --- reading ----------------------------------------------------------------------------------

    def latest(self) -> Head:
        with self.read_engine.connect() as conn:
            return _head(conn.execute(_STATE).one())

    def proof(self, certificate_id: str, digest: str, index: int, head: Head) -> dict[str, Any]:
        """The inclusion proof document (``tabula.log-proof/1``) of one leaf against ``head``."""
        inclusion = self._hashes(inclusion_ranges(index, head.tree_size))
        return self.document(certificate_id, digest, index, head, inclusion)

    @staticmethod
    def document(
        certificate_id: str, digest: str, index: int, head: Head | int, inclusion: list[str]
    ) -> dict[str, Any]:
        """The proof document; ``head`` an int: a tree size whose signed head the asker holds."""
        return {
            "schema": PROOF_SCHEMA,
            "certificate_id": certificate_id,
            "sha256": digest,
            "leaf_index": index,
            "tree_size": head if isinstance(head, int) else head.tree_size,
            "inclusion": inclusion,
            "tree_head": None if isinstance(head, int) else head.signed(),
        }

    def _hashes(self, ranges: list[tuple[int, int]]) -> list[str]:
        """The hashes of the subtrees ``ranges`` (hex), from one read of their stored nodes."""
        with self.read_engine.connect() as conn:
            nodes = _nodes(conn, proof_nodes(ranges))
        return [range_hash(s, e, nodes).hex() for s, e in ranges]

    def find(self, *, certificate_id: str | None = None, sha256: str | None = None) -> tuple[str, str, int]:
        """(certificate id, certificate hash, leaf index) of a logged certificate, appending it if queued."""
        with self.read_engine.connect() as conn:
            if certificate_id is None:
                assert sha256 is not None
                index = conn.execute(_BY_LEAF, {"leaf": leaf_hash(bytes.fromhex(sha256))}).scalar()
                if index is None:
                    raise NotFound("no certificate with this hash in the log")
                row = conn.execute(_ENTRY.where(LogEntry.leaf_index == index)).one()
                return row.certificate_id, row.digest, int(index)
            digest = conn.execute(
                select(CertificateRow.digest).where(CertificateRow.certificate_id == certificate_id)
            ).scalar()
        if digest is None:
            raise NotFound(f"no certificate {certificate_id} on this hub")
        index, _ = self.ensure_logged(certificate_id)
        return certificate_id, digest, index

    def proof_at(self, certificate_id: str, digest: str, index: int, tree_size: int | None) -> dict[str, Any]:
        """The inclusion proof against the latest tree head, or against an older size (without its
        tree head, which the hub does not keep: the asker holds it)."""
        head = self.latest()
        if tree_size is None or tree_size == head.tree_size:
            return self.proof(certificate_id, digest, index, head)
        if not index < tree_size <= head.tree_size:
            raise BadLogRequest(
                f"leaf {index} is in the trees of {index + 1} to {head.tree_size} leaves, not of {tree_size}"
            )
        inclusion = self._hashes(inclusion_ranges(index, tree_size))
        return self.document(certificate_id, digest, index, tree_size, inclusion)

    def consistency(self, first: int, second: int | None) -> dict[str, Any]:
        """The consistency proof document (``tabula.log-consistency/1``) from ``first`` to ``second``
        (default: the latest size, whose signed tree head comes with it)."""
        head = self.latest()
        size = head.tree_size if second is None else second
        if not 0 <= first <= size <= head.tree_size:
            raise BadLogRequest(
                f"sizes must satisfy 0 <= first <= second <= {head.tree_size} (the log's size)"
            )
        return {
            "schema": CONSISTENCY_SCHEMA,
            "first_size": first,
            "tree_size": size,
            "consistency": self._hashes(consistency_ranges(first, size) if first else []),
            "tree_head": head.signed() if size == head.tree_size else None,
        }

    def entries(self, start: int, count: int) -> list[dict[str, Any]]:
        """Leaves ``start`` to ``start + count - 1``: index, certificate id, certificate hash."""
        q = _ENTRY.add_columns(LogEntry.leaf_index).where(
            LogEntry.leaf_index >= start, LogEntry.leaf_index < start + count
        )
        with self.read_engine.connect() as conn:
            rows = conn.execute(q.order_by(LogEntry.leaf_index)).all()
        return [
            {"leaf_index": r.leaf_index, "certificate_id": r.certificate_id, "sha256": r.digest} for r in rows
        ]
