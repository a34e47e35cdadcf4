"""The hub's transparency log: every certificate hash it accepts, in an append-only Merkle tree.

Leaves are the certificate hashes (RFC 9162 hashing, :mod:`certs.merkle`); the log key, stored in
the database (``log_keys``, created by ``station-hub migrate``), signs every tree head
(:mod:`certs.tlog` formats).  What a store needs for proofs is kept: the hash of every complete
subtree (``log_nodes``), so any inclusion or consistency proof is one read of O(log n) rows.
Appending, and why it is safe with several hub processes: :mod:`hub.logwriter`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from certs.merkle import Frontier, consistency_ranges, inclusion_ranges, leaf_hash, proof_nodes, range_hash
from certs.tlog import CONSISTENCY_SCHEMA, PROOF_SCHEMA, sign_tree_head
from hub.db import CertificateRow, LogEntry, LogKey, LogNode
from hub.errors import HubError, NotFound
from hub.logwriter import INDEX, STATE, Appended, Head, LogWriter, read_nodes

__all__ = ["Appended", "BadLogRequest", "Head", "Logged", "TransparencyLog"]


class BadLogRequest(HubError):
    code = "bad_tree_size"


@dataclass(frozen=True)
class Logged:
    """Where a certificate is in the log: its leaf, a tree head that includes it, and the append that
    put it there when this process made it (its proof then needs no read)."""

    index: int
    head: Head
    appended: Appended | None = None


_BY_LEAF = select(LogNode.idx).where(LogNode.level == 0, LogNode.hash == bindparam("leaf"))
_INDEXES = select(LogEntry.certificate_id, LogEntry.leaf_index).where(
    LogEntry.certificate_id.in_(bindparam("cids", expanding=True))
)
_ENTRY = select(LogEntry.certificate_id, CertificateRow.digest).join(
    CertificateRow, CertificateRow.certificate_id == LogEntry.certificate_id
)


def _head(row: Any) -> Head:
    return Head(int(row.tree_size), row.root_hash, row.timestamp, row.tree_head)


class TransparencyLog:
    def __init__(self, engine: Engine, write_engine: Engine, read_engine: Engine) -> None:
        self.write_engine = write_engine
        self.read_engine = read_engine
        self.postgres = engine.dialect.name == "postgresql"
        self.writer = LogWriter(self.postgres, self._sign)
        self._key: tuple[str, Ed25519PrivateKey, str] | None = None

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

    def _sign(self, frontier: Frontier, stamp: str) -> Head:
        _, private, _ = self.key()
        root = frontier.root()
        env = sign_tree_head(private, frontier.size, root, stamp)
        text = json.dumps(env.to_json(), sort_keys=True, separators=(",", ":"))
        return Head(frontier.size, root.hex(), stamp, text)

    # --- appending (hub.logwriter) ----------------------------------------------------------------

    def _lookup(self, certificate_id: str) -> Logged | None:
        with self.read_engine.connect() as conn:
            index = conn.execute(INDEX, {"cid": certificate_id}).scalar()
            return None if index is None else Logged(int(index), _head(conn.execute(STATE).one()))

    def ensure_logged(self, certificate_id: str, *, fresh: bool = False) -> Logged:
        """Where a stored certificate is in the log, appending the queue first if it is not there
        yet.  ``fresh``: it was queued just now (do not look it up before appending)."""
        if not self.postgres:
            return self._lookup(certificate_id) or self._append_sqlite(certificate_id)
        found = None if fresh else self._lookup(certificate_id)
        requeued = False
        while found is None:
            outcome = self.writer.turn(self.read_engine.connect)
            appended = self.writer.appended_here(certificate_id)
            if appended is not None:
                return Logged(appended.indexes[certificate_id], appended.head, appended)
            if outcome == "waited":
                continue  # another thread's batch, without this one: the next batch takes it
            found = self._lookup(certificate_id)  # appended by another process?
            if found is None and outcome == "empty":  # neither logged nor queued: a hand-made row?
                if requeued or not self._requeue(certificate_id):
                    raise NotFound(f"no certificate {certificate_id} on this hub")
                requeued = True
        return found

    def ensure_logged_many(self, certificate_ids: list[str], fresh: set[str]) -> dict[str, Logged]:
        """:meth:`ensure_logged` for the certificates of a batch, appending or reading once for all:
        the first one not appended by this process takes its turn (the append takes the whole
        queue), then those another process appended are read in one statement."""
        out: dict[str, Logged] = {}
        turned = False
        for cid in certificate_ids:
            if cid in out:
                continue
            here = self._here(cid)
            if here is not None:
                out[cid] = here
                continue
            out[cid] = self.ensure_logged(cid, fresh=cid in fresh and not turned)
            if not turned:
                turned = True
                out |= self._lookup_many(
                    [c for c in certificate_ids if c not in out and self._here(c) is None]
                )
        return out

    def _here(self, certificate_id: str) -> Logged | None:
        appended = self.writer.appended_here(certificate_id)
        if appended is None or certificate_id not in appended.indexes:
            return None
        return Logged(appended.indexes[certificate_id], appended.head, appended)

    def _lookup_many(self, certificate_ids: list[str]) -> dict[str, Logged]:
        if not certificate_ids:
            return {}
        with self.read_engine.connect() as conn:
            found = conn.execute(_INDEXES, {"cids": certificate_ids}).all()
            if not found:
                return {}
            head = _head(conn.execute(STATE).one())
        return {r.certificate_id: Logged(int(r.leaf_index), head) for r in found}

    def proofs(self, items: list[tuple[str, str, Logged]]) -> list[dict[str, Any]]:
        """:meth:`proof` of several certificates; the hashes that are not in memory, in one read."""
        wanted = [
            (i, inclusion_ranges(lg.index, lg.head.tree_size))
            for i, (_, _, lg) in enumerate(items)
            if lg.appended is None
        ]
        nodes: dict[Any, bytes] = {}
        if wanted:
            with self.read_engine.connect() as conn:
                nodes = read_nodes(conn, {n for _, ranges in wanted for n in proof_nodes(ranges)})
        stored = dict(wanted)
        out = []
        for i, (cid, digest, logged) in enumerate(items):
            if logged.appended is not None:
                inclusion = logged.appended.inclusion(logged.index)
            else:
                inclusion = [range_hash(a, b, nodes).hex() for a, b in stored[i]]
            out.append(self.document(cid, digest, logged.index, logged.head, inclusion))
        return out

    def _append_sqlite(self, certificate_id: str) -> Logged:
        with self.write_engine.begin() as conn:  # BEGIN IMMEDIATE: the one writer
            appended = self.writer.append_queued(conn)
            if appended is None or certificate_id not in appended.indexes:
                if not self.writer.requeue(conn, certificate_id):
                    raise NotFound(f"no certificate {certificate_id} on this hub")
                appended = self.writer.append_queued(conn)
        if appended is None or certificate_id not in appended.indexes:
            found = self._lookup(certificate_id)
            if found is None:
                raise NotFound(f"no certificate {certificate_id} on this hub")
            return found
        return Logged(appended.indexes[certificate_id], appended.head, appended)

    def _requeue(self, certificate_id: str) -> bool:
        try:
            with self.write_engine.begin() as conn:
                return self.writer.requeue(conn, certificate_id)
        except IntegrityError:  # queued by another thread meanwhile
            return True

    def catch_up(self) -> int:
        """Append everything queued (after a bulk load); returns the leaves appended."""
        total = 0
        while True:
            if self.postgres:
                with self.read_engine.connect() as conn:
                    appended, lost = self.writer.append_cas(conn, trust_memory=False)
                if lost:
                    continue
            else:
                with self.write_engine.begin() as conn:
                    appended = self.writer.append_queued(conn)
            if appended is None:
                return total
            total += len(appended.indexes)

    # --- reading ----------------------------------------------------------------------------------

    def latest(self) -> Head:
        with self.read_engine.connect() as conn:
            return _head(conn.execute(STATE).one())

    def proof(self, certificate_id: str, digest: str, logged: Logged) -> dict[str, Any]:
        """The inclusion proof document (``tabula.log-proof/1``) of one leaf against its head."""
        index, head = logged.index, logged.head
        if logged.appended is not None:
            inclusion = logged.appended.inclusion(index)
        else:
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
            nodes = read_nodes(conn, proof_nodes(ranges))
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
        return certificate_id, digest, self.ensure_logged(certificate_id).index

    def proof_at(self, certificate_id: str, digest: str, index: int, tree_size: int | None) -> dict[str, Any]:
        """The inclusion proof against the latest tree head, or against an older size (without its
        tree head, which the hub does not keep: the asker holds it)."""
        head = self.latest()
        if tree_size is None or tree_size == head.tree_size:
            return self.proof(certificate_id, digest, Logged(index, head))
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
