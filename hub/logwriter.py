"""Appending to the transparency log (:mod:`hub.tlog`), serialised across threads and processes.

Ingest logs a certificate in the transaction that stores it, so a stored certificate is always
logged or queued (``log_queue``):

* **SQLite**: the ingest transaction appends it (``BEGIN IMMEDIATE`` already makes it the only
  writer), with anything left in the queue.
* **PostgreSQL**: ingest queues it, in the statement that stores it, and commits (without waiting
  for the disk: see :mod:`hub.ingest`).  Then one thread per hub process at a time appends
  everything queued (its own upload and the others') in **one statement** that is a
  compare-and-set: it updates ``log_state`` only if the log is still the tree (size, root) the batch
  was computed on, and writes the nodes and entries only if that update happened.  The row lock of
  ``log_state`` orders the appends of several hub processes: the second re-checks, finds the tree
  changed, writes nothing, and computes again on the new tree.  The other threads of the process wait
  for the append in progress and take their leaf from it, in memory: one commit, one signed tree
  head, no further read, for a whole batch of uploads.

Why not a database lock around read-compute-write: measured with 16 parallel stations on a loaded
2-core machine, an advisory lock held across the append's round trips (each waiting to be
scheduled) halved the hub's ingest rate; the critical section here is one statement and its commit.

Whatever the number of hub processes, a leaf index is assigned once and the log never forks:
``log_entries.leaf_index`` and ``certificate_id``, the nodes' ``(level, idx)`` and the leaf hashes
are unique, and no append commits on a tree other than the one it extends.  A queue row whose
certificate is logged already (a race of :meth:`LogWriter.requeue`) is dropped, not appended.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, tuple_, update
from sqlalchemy.engine import Connection

from certs.merkle import Frontier, Node, frontier_nodes, inclusion_proof, leaf_hash
from certs.tlog import format_timestamp
from hub.db import CertificateRow, LogEntry, LogNode, LogQueue, LogState


@dataclass(frozen=True)
class Head:
    """The log's state as a signed tree head states it."""

    tree_size: int
    root_hash: str
    timestamp: str
    tree_head: str  # the signed tree head: JWS, JSON text

    def signed(self) -> Any:
        return self._signed

    @cached_property
    def _signed(self) -> Any:  # parsed once: every upload answered from one append shows it
        return json.loads(self.tree_head)


#: Leaves appended per statement at most (a longer queue takes several).
BATCH = 1000
#: Appends of this process remembered, by certificate id (their waiting uploads read them).
RECENT = 4096


@dataclass(frozen=True)
class Appended:
    head: Head
    indexes: dict[str, int]  # certificate id -> leaf index
    nodes: dict[Node, bytes]  # the tree's right edge before and every node appended: what the
    # inclusion proof of each appended leaf against ``head`` needs, without a read

    def inclusion(self, index: int) -> list[str]:
        return [h.hex() for h in inclusion_proof(index, self.head.tree_size, self.nodes)]


@dataclass
class _Tree:
    """What this process last appended (or read): the log's size, root, time and right edge."""

    size: int
    root: str
    stamp: str
    edge: dict[int, bytes]


@dataclass
class _Batch:
    """An append computed on ``base``, not yet written."""

    base: _Tree
    queue_ids: list[int]
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)
    indexes: dict[str, int] = field(default_factory=dict)
    known: dict[Node, bytes] = field(default_factory=dict)
    tree: _Tree | None = None
    head: Head | None = None


STATE = select(LogState.tree_size, LogState.root_hash, LogState.timestamp, LogState.tree_head).where(
    LogState.id == 1
)
NODES = select(LogNode.level, LogNode.idx, LogNode.hash).where(
    tuple_(LogNode.level, LogNode.idx).in_(bindparam("coords", expanding=True))
)
INDEX = select(LogEntry.leaf_index).where(LogEntry.certificate_id == bindparam("cid"))
# The queue, oldest first, and whether each is logged already (then dropped, not appended).
_QUEUED = (
    select(LogQueue.id, LogQueue.certificate_id, LogQueue.digest, LogEntry.leaf_index)
    .outerjoin(LogEntry, LogEntry.certificate_id == LogQueue.certificate_id)
    .order_by(LogQueue.id)
    .limit(BATCH)
)
_QUEUED_ONE = select(LogQueue.id).where(LogQueue.certificate_id == bindparam("cid"))
_DIGEST = select(CertificateRow.digest).where(CertificateRow.certificate_id == bindparam("cid"))
_ENQUEUE = insert(LogQueue)
_ADD_NODES = insert(LogNode)
_ADD_ENTRIES = insert(LogEntry)
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
_CAS = text(
    """
WITH s AS (
    UPDATE log_state SET tree_size = :size, root_hash = :root, timestamp = :stamp, tree_head = :head
    WHERE id = 1 AND tree_size = :old_size AND root_hash = :old_root
    RETURNING 1
), n AS (
    INSERT INTO log_nodes (level, idx, hash)
    SELECT * FROM unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[]), CAST(:hashes AS bytea[]))
    WHERE EXISTS (SELECT 1 FROM s)
), e AS (
    INSERT INTO log_entries (leaf_index, certificate_id, appended_at)
    SELECT l, c, CAST(:at AS timestamptz)
    FROM unnest(CAST(:leaves AS bigint[]), CAST(:cids AS varchar[])) AS u(l, c)
    WHERE EXISTS (SELECT 1 FROM s)
), q AS (
    DELETE FROM log_queue WHERE id = ANY(CAST(:ids AS bigint[])) AND EXISTS (SELECT 1 FROM s)
)
SELECT count(*) FROM s
"""
)


def read_nodes(conn: Connection, coords: Iterable[Node]) -> dict[Node, bytes]:
    wanted = list(coords)
    if not wanted:
        return {}
    return {(r.level, r.idx): bytes(r.hash) for r in conn.execute(NODES, {"coords": wanted})}


class LogWriter:
    """Appends for one hub process; ``sign(frontier, stamp)`` makes the signed tree head."""

    def __init__(self, postgres: bool, sign: Callable[[Frontier, str], Head]) -> None:
        self.postgres = postgres
        self.sign = sign
        self._tree: _Tree | None = None  # checked against the stored state before it is trusted
        self._recent: OrderedDict[str, Appended] = OrderedDict()
        self._appending = threading.Lock()  # one appending thread per process (PostgreSQL)
        self._done = threading.Condition()
        self._generation = 0  # appends ended in this process: what waiting threads watch

    # --- queueing ---------------------------------------------------------------------------------

    def append_now(self, conn: Connection, certificate_id: str, digest: str) -> Appended:
        """SQLite: append a certificate stored in the caller's transaction (``BEGIN IMMEDIATE``
        makes it the only writer), with anything left queued.  (PostgreSQL ingest queues it
        instead, in the statement that stores it: :mod:`hub.ingest`.)"""
        appended = self.append_queued(conn, [(certificate_id, digest)])
        assert appended is not None
        return appended

    def requeue(self, conn: Connection, certificate_id: str) -> bool:
        """Queue a stored certificate that is neither logged nor queued (a hand-made row); False
        when no such certificate is stored."""
        cid = {"cid": certificate_id}
        digest = conn.execute(_DIGEST, cid).scalar()
        if digest is None:
            return False
        if conn.execute(INDEX, cid).first() is None and conn.execute(_QUEUED_ONE, cid).first() is None:
            conn.execute(_ENQUEUE, {"certificate_id": certificate_id, "digest": digest})
        return True

    # --- computing an append -----------------------------------------------------------------------

    def _base(self, conn: Connection, trust_memory: bool) -> _Tree:
        """The tree to append to: the one this process last wrote (PostgreSQL, first try; the
        compare-and-set refuses it if another process appended since), else the stored state."""
        if trust_memory and self._tree is not None:
            return self._tree
        state = conn.execute(STATE).one()
        size, root = int(state.tree_size), state.root_hash
        mine = self._tree
        if mine is not None and (mine.size, mine.root) == (size, root):
            return mine  # the same tree: nodes never change
        edge = Frontier.load(size, read_nodes(conn, frontier_nodes(size))).edge
        return _Tree(size, root, state.timestamp, edge)

    def _batch(self, conn: Connection, extra: list[tuple[str, str]], trust_memory: bool) -> _Batch | None:
        # The tree first, then the queue: a queue read after another append committed no longer
        # holds what it appended, one read before is paired with a tree the compare-and-set refuses.
        base = self._base(conn, trust_memory)
        queued = conn.execute(_QUEUED).all()
        leaves = [(r.certificate_id, r.digest) for r in queued if r.leaf_index is None] + extra
        if not leaves:
            return None
        batch = _Batch(base, [r.id for r in queued])
        frontier = Frontier(base.size, dict(base.edge))
        batch.known = {(lv, ix): frontier.edge[lv] for lv, ix in frontier_nodes(frontier.size)}
        for cert_id, digest in leaves:
            batch.indexes[cert_id] = frontier.size
            for level, idx, h in frontier.append(leaf_hash(bytes.fromhex(digest))):
                batch.nodes.append((level, idx, h))
                batch.known[(level, idx)] = h
        stamp = max(format_timestamp(datetime.now(UTC)), base.stamp)  # never back in time
        batch.head = self.sign(frontier, stamp)
        batch.tree = _Tree(frontier.size, batch.head.root_hash, stamp, dict(frontier.edge))
        return batch

    def _done_with(self, batch: _Batch) -> Appended:
        assert batch.head is not None
        self._tree = batch.tree
        appended = Appended(batch.head, batch.indexes, batch.known)
        with self._done:
            for cert_id in batch.indexes:
                self._recent[cert_id] = appended
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
        return appended

    # --- writing -----------------------------------------------------------------------------------

    def append_queued(self, conn: Connection, extra: list[tuple[str, str]] | None = None) -> Appended | None:
        """SQLite: append what is queued (and ``extra``) in the caller's transaction, which
        ``BEGIN IMMEDIATE`` makes the only writer."""
        batch = self._batch(conn, extra or [], trust_memory=False)
        if batch is None:
            return None
        assert batch.head is not None
        now = datetime.now(UTC)
        conn.execute(_ADD_NODES, [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in batch.nodes])
        conn.execute(
            _ADD_ENTRIES,
            [{"leaf_index": i, "certificate_id": c, "appended_at": now} for c, i in batch.indexes.items()],
        )
        if batch.queue_ids:
            conn.execute(_DEQUEUE, {"ids": batch.queue_ids})
        h = batch.head
        conn.execute(
            _SET_STATE, {"size": h.tree_size, "root": h.root_hash, "stamp": h.timestamp, "head": h.tree_head}
        )
        return self._done_with(batch)

    def append_cas(self, conn: Connection, trust_memory: bool = True) -> tuple[Appended | None, bool]:
        """PostgreSQL, on an autocommit connection: append what is queued in one compare-and-set
        statement.  (append, False); (None, False): nothing queued; (None, True): the log is not the
        tree the batch was computed on (another process appended): read it and compute again."""
        batch = self._batch(conn, [], trust_memory)
        if batch is None:
            return None, False
        if conn.execute(_CAS, _cas_params(batch)).scalar() != 1:
            self._tree = None
            return None, True
        return self._done_with(batch), False

    # --- waiting ---------------------------------------------------------------------------------------

    def appended_here(self, certificate_id: str) -> Appended | None:
        """The append of this process that logged ``certificate_id``, if it is remembered."""
        with self._done:
            return self._recent.get(certificate_id)

    def turn(self, connect: Callable[[], Any]) -> str:
        """Append what is queued if no other thread of this process does ("appended", "empty": nothing
        was queued, "lost": another process appended first), else wait for the append in progress
        ("waited", or "timeout")."""
        generation = self._generation
        if not self._appending.acquire(blocking=False):
            with self._done:
                ended = self._done.wait_for(lambda: self._generation != generation, timeout=0.5)
            return "waited" if ended else "timeout"
        try:
            with connect() as conn:
                appended, lost = self.append_cas(conn)
        finally:
            self._appending.release()
            with self._done:
                self._generation += 1
                self._done.notify_all()
        if lost:  # the other process's append likely took this one's uploads too: look first
            return "lost"
        return "empty" if appended is None else "appended"


def _cas_params(batch: _Batch) -> dict[str, Any]:
    head = batch.head
    assert head is not None
    return {
        "size": head.tree_size,
        "root": head.root_hash,
        "stamp": head.timestamp,
        "head": head.tree_head,
        "old_size": batch.base.size,
        "old_root": batch.base.root,
        "levels": [n[0] for n in batch.nodes],
        "idxs": [n[1] for n in batch.nodes],
        "hashes": [n[2] for n in batch.nodes],
        "leaves": list(batch.indexes.values()),
        "cids": list(batch.indexes),
        "at": datetime.now(UTC),
        "ids": batch.queue_ids,
    }
