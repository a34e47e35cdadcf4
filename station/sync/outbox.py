"""The durable outbox: every signed certificate and diagnostics report, queued before anything is sent.

A single SQLite database, ``$TABULA_HOME/outbox/outbox.sqlite3``, in WAL mode with
``synchronous=FULL``: once :func:`enqueue_certificate` returns, the document survives kill -9, a power
cut or a reboot (on the live image ``$TABULA_HOME`` is the persistence partition).  Enqueuing is
local only and never waits for the network.

Each row is one document to upload, keyed by its id (the certificate id; for an unsigned diagnostics
report the SHA-256 of its bytes), with the exact bytes to send.  The sync client records the outcome
of every upload in its own durable transaction, the moment it knows it: *sent* (the hub acknowledged
it), *rejected* (the hub refused it for good, with its reason; ``station sync --requeue`` sends it
again after a fix), or a transient failure, which gives that row alone its own exponential backoff
(``failures``, ``next_attempt_at``) while the others keep flowing.  Rows stay in the table as a record
of what was delivered, with the hub's inclusion proof of each certificate (its transparency log; also
written next to the certificate as ``<id>.log.json``, :mod:`station.sync.logsync`).  Because uploads are idempotent (the hub answers 200 to a byte-identical
re-upload), a row may be sent twice after a crash but is stored once.

The schema is versioned (``PRAGMA user_version``); an outbox written by an older station is migrated
in place, in one transaction, the first time a newer one opens it.

If a station crashes between writing ``<id>.json`` and queuing it, :func:`reconcile` (run before each
drain) queues every certificate file of the certificate directory the outbox does not know yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from certs.canonical import parse_json
from certs.chainhead import is_chain_head_file
from certs.errors import CertError
from certs.jws import TYP_CERTIFICATE, TYP_DESTRUCTION, parse_envelope
from certs.tlog import is_sidecar
from host import paths
from station.sync.errors import OutboxConflict, OutboxError

Kind = Literal["certificate", "report", "destruction"]
State = Literal["pending", "sent", "rejected"]

OUTBOX_DIR = "outbox"
DB_NAME = "outbox.sqlite3"
MAX_DOCUMENT_BYTES = 1024 * 1024  # the hub refuses larger uploads; refuse them here, loudly

#: Version 1 is the unversioned schema of the first station releases (``user_version`` 0, no backoff
#: columns); version 2 gives every row its own backoff and the hub's error code; version 3 accepts
#: destruction records (``kind = 'destruction'``) and keeps the hub's inclusion proof of every
#: certificate it holds (its transparency log); version 4 keeps what the hub said of each lot reference
#: the technician gave (``lot_checks``: open, closed, unknown, or pending while the hub is unreachable).
SCHEMA_VERSION = 4

_ITEMS = """CREATE TABLE {name} (
    doc_id          TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('certificate', 'report', 'destruction')),
    body            BLOB NOT NULL,
    sha256          TEXT NOT NULL,
    source          TEXT NOT NULL,
    created_at      REAL NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         REAL,
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    failures        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    error_code      TEXT,
    log_proof       BLOB,
    log_proof_at    REAL,
    UNIQUE (kind, doc_id)
)"""
_INDEXES = (
    "CREATE INDEX items_pending ON items (state, seq)",
    "CREATE INDEX items_due ON items (state, next_attempt_at)",
)
_LOT_CHECKS = """CREATE TABLE lot_checks (
    reference   TEXT PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('open', 'closed', 'unknown', 'pending')),
    detail      TEXT NOT NULL DEFAULT '',
    checked_at  REAL NOT NULL
)"""
_CREATE = (
    _ITEMS.format(name="items"),
    *_INDEXES,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    _LOT_CHECKS,
)

_V2_COLUMNS = (
    "doc_id, kind, body, sha256, source, created_at, state, attempts, last_error, sent_at, seq,"
    " failures, next_attempt_at, last_attempt_at, error_code"
)

# What turns version N into version N + 1 (run inside one BEGIN IMMEDIATE transaction).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE items ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE items ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0",
        "ALTER TABLE items ADD COLUMN last_attempt_at REAL",
        "ALTER TABLE items ADD COLUMN error_code TEXT",
        "CREATE INDEX IF NOT EXISTS items_due ON items (state, next_attempt_at)",
        # Version 1 marked "rejected" a certificate the hub answered 409 naming that very certificate
        # (two identical uploads racing on the hub): it is stored, so send it again to learn so.
        "UPDATE items SET state = 'pending', last_error = NULL"
        " WHERE state = 'rejected' AND last_error LIKE 'HTTP 409 %' AND instr(last_error, doc_id) > 0",
    ),
    # SQLite cannot widen a CHECK constraint: the table is copied into one that accepts destructions
    # and has room for log proofs (certificates sent before get theirs from later passes,
    # station.sync.logsync).
    2: (
        _ITEMS.format(name="items_v3"),
        "INSERT INTO items_v3 (" + _V2_COLUMNS + ") SELECT " + _V2_COLUMNS + " FROM items",
        "DROP TABLE items",
        "ALTER TABLE items_v3 RENAME TO items",
        *_INDEXES,
    ),
    3: (_LOT_CHECKS,),
}

_ITEM_COLUMNS = "seq, doc_id, kind, body, sha256, attempts, failures, source"


def outbox_dir(home: Path | None = None) -> Path:
    return (home if home is not None else paths.home()) / OUTBOX_DIR


def db_path(home: Path | None = None) -> Path:
    return outbox_dir(home) / DB_NAME


@dataclass(frozen=True)
class Item:
    seq: int
    doc_id: str
    kind: Kind
    body: bytes
    sha256: str
    attempts: int
    failures: int = 0  # transient failures in a row (its backoff); 0 after a requeue
    source: str = ""  # the file it was queued from


@dataclass(frozen=True)
class Trouble:
    """A document the hub refused for good, or one waiting out its own backoff (status, CLI, TUI)."""

    kind: Kind
    doc_id: str
    error: str
    code: str | None
    failures: int
    at: float | None  # when the hub last answered (rejected) or the next attempt (retrying)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.doc_id,
            "error": self.error,
            "code": self.code,
            "failures": self.failures,
            "at": self.at,
        }


def _upsert_meta(c: sqlite3.Connection, meta: Mapping[str, str | None]) -> None:
    for key, value in meta.items():
        if value is None:
            c.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )


class Outbox:
    """One connection to the outbox database (one per thread; processes may share the file)."""

    def __init__(self, home: Path | None = None, *, create: bool = True) -> None:
        self.path = db_path(home)
        self._depth = 0  # transactions open (nested ones join the outermost)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            raise OutboxError(f"cannot open the outbox {self.path}: {e}") from e
        try:
            self._upgrade()
        except BaseException:
            self.conn.close()
            raise

    def _version(self) -> int:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            has_items = self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'"
            ).fetchone()
            return 1 if has_items else 0
        return version

    def _upgrade(self) -> None:
        """Create the schema, or migrate an older outbox in place (one transaction; idempotent)."""
        try:
            if self._version() == SCHEMA_VERSION:
                return
            with self.transaction() as c:
                version = self._version()  # again, under the write lock: another process may have won
                if version > SCHEMA_VERSION:
                    raise OutboxError(
                        f"the outbox {self.path} was written by a newer station (schema {version})",
                        hint="update this station's software, or move the outbox aside",
                    )
                statements: tuple[str, ...] = _CREATE if version == 0 else ()
                for v in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
                    statements += _MIGRATIONS[v]
                for sql in statements:
                    c.execute(sql)
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as e:
            raise OutboxError(f"cannot create or upgrade the outbox {self.path}: {e}") from e

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One durable transaction; one opened inside another joins it (the outcomes of a batch
        upload are committed together, in one disk flush)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise OutboxError(f"outbox {self.path} is busy or broken: {e}") from e
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        try:
            self.conn.execute("COMMIT")  # fsync'd: synchronous=FULL
        except sqlite3.Error as e:
            raise OutboxError(f"cannot commit to the outbox {self.path}: {e}") from e

    # --- writing --------------------------------------------------------------------------------

    def put(self, kind: Kind, doc_id: str, body: bytes, source: str) -> bool:
        """Queue ``body`` under ``(kind, doc_id)``; True when new, False when already queued (same bytes).

        Raises :class:`OutboxConflict` if different bytes are already queued under that id.
        """
        if len(body) > MAX_DOCUMENT_BYTES:
            raise OutboxError(
                f"{source} is {len(body)} bytes, more than the {MAX_DOCUMENT_BYTES} an upload may carry"
            )
        digest = hashlib.sha256(body).hexdigest()
        with self.transaction() as c:
            row = c.execute(
                "SELECT sha256 FROM items WHERE kind = ? AND doc_id = ?", (kind, doc_id)
            ).fetchone()
            if row is not None:
                if row[0] != digest:
                    raise OutboxConflict(f"{kind} {doc_id} is already queued with different content")
                return False
            c.execute(
                "INSERT INTO items (doc_id, kind, body, sha256, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (doc_id, kind, body, digest, source, time.time()),
            )
        return True

    def mark_sent(self, seq: int, now: float, proof: bytes | None = None) -> None:
        """The hub holds this document (and ``proof`` is its inclusion proof in the hub's log, if
        known): durable, in one transaction, before the next upload starts."""
        with self.transaction() as c:
            c.execute(
                "UPDATE items SET state = 'sent', sent_at = ?, last_attempt_at = ?, attempts = attempts + 1,"
                " failures = 0, next_attempt_at = 0, last_error = NULL, error_code = NULL WHERE seq = ?",
                (now, now, seq),
            )
            if proof is not None:
                c.execute("UPDATE items SET log_proof = ?, log_proof_at = ? WHERE seq = ?", (proof, now, seq))
            _upsert_meta(c, {"last_success_at": repr(now)})

    def mark_rejected(self, seq: int, reason: str, code: str | None, now: float) -> None:
        """The hub refused this document for good (kept, with its reason, until requeued)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE items SET state = 'rejected', last_attempt_at = ?, attempts = attempts + 1,"
                " last_error = ?, error_code = ? WHERE seq = ?",
                (now, reason, code, seq),
            )

    def mark_failed(self, seq: int, reason: str, code: str | None, now: float, not_before: float) -> None:
        """A transient failure of this document: it alone waits until ``not_before``."""
        with self.transaction() as c:
            c.execute(
                "UPDATE items SET last_attempt_at = ?, attempts = attempts + 1, failures = failures + 1,"
                " next_attempt_at = ?, last_error = ?, error_code = ? WHERE seq = ? AND state = 'pending'",
                (now, not_before, reason, code, seq),
            )

    def record_lot(self, reference: str, state: str, detail: str, now: float) -> None:
        """What the hub said of a lot reference (or ``pending``: it could not be asked)."""
        with self.transaction() as c:
            c.execute(
                "INSERT INTO lot_checks (reference, state, detail, checked_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (reference) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
                " checked_at = excluded.checked_at",
                (reference, state, detail, now),
            )

    def lot_checks(self) -> list[tuple[str, str, str, float]]:
        """Every lot reference checked or waiting: (reference, state, detail, checked_at), newest first."""
        rows = self.conn.execute(
            "SELECT reference, state, detail, checked_at FROM lot_checks ORDER BY checked_at DESC, reference"
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def keep_proof(self, seq: int, proof: bytes, now: float) -> None:
        """The hub's inclusion proof of this (sent) certificate."""
        with self.transaction() as c:
            c.execute("UPDATE items SET log_proof = ?, log_proof_at = ? WHERE seq = ?", (proof, now, seq))

    def without_proof(self, limit: int) -> list[Item]:
        """Certificates the hub holds whose inclusion proof the station has not kept yet, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE kind = 'certificate' AND state = 'sent'"
            " AND log_proof IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [Item(*r) for r in rows]

    def proven(self) -> list[tuple[str, str]]:
        """(id, source file) of every certificate whose inclusion proof is kept."""
        rows = self.conn.execute(
            "SELECT doc_id, source FROM items WHERE kind = 'certificate' AND log_proof IS NOT NULL"
        )
        return [(r[0], r[1]) for r in rows]

    def proof_of(self, doc_id: str) -> bytes | None:
        row = self.conn.execute(
            "SELECT log_proof FROM items WHERE kind = 'certificate' AND doc_id = ?", (doc_id,)
        ).fetchone()
        return None if row is None else row[0]

    def set_meta(self, meta: Mapping[str, str | None]) -> None:
        """Record the outbox-wide state (last error of the hub, its backoff); None deletes a key."""
        with self.transaction() as c:
            _upsert_meta(c, meta)

    def requeue(self, doc_id: str | None = None) -> int:
        """Make rejected documents, and pending ones waiting out a backoff, due now (after a fix).

        ``doc_id`` None: all of them.  Returns how many rows changed; documents already sent are left.
        """
        where = "(state = 'rejected' OR (state = 'pending' AND (failures > 0 OR next_attempt_at > 0)))"
        args: tuple[str, ...] = ()
        if doc_id is not None:
            where += " AND doc_id = ?"
            args = (doc_id,)
        with self.transaction() as c:
            n = c.execute(
                "UPDATE items SET state = 'pending', failures = 0, next_attempt_at = 0, last_error = NULL,"
                f" error_code = NULL WHERE {where}",  # constant fragments only
                args,
            ).rowcount
            _upsert_meta(c, {"next_attempt_at": None})
        return n

    # --- reading --------------------------------------------------------------------------------

    def known_ids(self, kind: Kind) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT doc_id FROM items WHERE kind = ?", (kind,))}

    def due(self, horizon: float) -> list[int]:
        """The pending rows whose backoff ends by ``horizon``: fresh ones in queue order, then the ones
        that already failed (so a document the hub keeps failing never goes before healthy ones)."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT seq FROM items WHERE state = 'pending' AND next_attempt_at <= ?"
                " ORDER BY failures > 0, seq",
                (horizon,),
            )
        ]

    def item(self, seq: int) -> Item | None:
        """The row ``seq`` if it is still pending."""
        r = self.conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE seq = ? AND state = 'pending'",
            (seq,),
        ).fetchone()
        if r is None:
            return None
        return Item(*r)

    def next_due_at(self) -> float | None:
        """When the earliest pending row's backoff ends (0 when one is due now); None if none pending."""
        row = self.conn.execute("SELECT MIN(next_attempt_at) FROM items WHERE state = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def backoffs(self) -> dict[int, float]:
        """When each pending row that failed may be tried again."""
        rows = self.conn.execute(
            "SELECT seq, next_attempt_at FROM items WHERE state = 'pending' AND failures > 0"
        )
        return {seq: float(when) for seq, when in rows}

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "sent": 0, "rejected": 0}
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            out[state] = n
        retrying = self.conn.execute(
            "SELECT COUNT(*) FROM items WHERE state = 'pending' AND failures > 0"
        ).fetchone()[0]
        unproven = self.conn.execute(
            "SELECT COUNT(*) FROM items WHERE kind = 'certificate' AND state = 'sent' AND log_proof IS NULL"
        ).fetchone()[0]
        return out | {"retrying": retrying, "without_proof": unproven}

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def rejected(self, limit: int = 20) -> list[Trouble]:
        """Documents the hub refused for good, oldest first, with its reason."""
        return self._troubles("state = 'rejected'", "last_attempt_at", limit)

    def retrying(self, limit: int = 20) -> list[Trouble]:
        """Pending documents that failed and wait out their own backoff, next due first."""
        return self._troubles("state = 'pending' AND failures > 0", "next_attempt_at", limit)

    def _troubles(self, where: str, when: str, limit: int) -> list[Trouble]:
        rows = self.conn.execute(
            f"SELECT kind, doc_id, last_error, error_code, failures, {when} FROM items"
            f" WHERE {where} ORDER BY {when}, seq LIMIT ?",
            (limit,),
        )
        return [Trouble(r[0], r[1], r[2] or "", r[3], r[4], r[5]) for r in rows]

    def state_of(self, kind: Kind, doc_id: str) -> State | None:
        row = self.conn.execute(
            "SELECT state FROM items WHERE kind = ? AND doc_id = ?", (kind, doc_id)
        ).fetchone()
        return None if row is None else row[0]

    def find(self, doc_id: str) -> list[tuple[Kind, State]]:
        """Kind and state of every row with this id (a certificate id or a report's SHA-256)."""
        return [
            (r[0], r[1])
            for r in self.conn.execute("SELECT kind, state FROM items WHERE doc_id = ?", (doc_id,))
        ]


# --- the hooks the station calls ------------------------------------------------------------------


def certificate_id_of(body: bytes, source: str) -> str:
    """The certificate id inside a signed certificate file (structure only; the hub verifies it)."""
    try:
        env = parse_envelope(body, expect=TYP_CERTIFICATE)
        payload = parse_json(env.payload_bytes, source)
    except CertError as e:
        raise OutboxError(f"{source} is not a signed certificate: {e.message}") from e
    cert_id = payload.get("certificate_id") if isinstance(payload, dict) else None
    if not isinstance(cert_id, str) or not cert_id:
        raise OutboxError(f"{source} has no certificate_id")
    return cert_id


def enqueue_certificate(path: Path, *, home: Path | None = None) -> str:
    """Queue the signed certificate (or failure report) ``path`` for upload; returns its id.

    Call it right after the certificate file is written.  Durable when it returns (fsync'd
    transaction); idempotent (queuing the same file again is a no-op).
    """
    try:
        body = path.read_bytes()
    except OSError as e:
        raise OutboxError(f"cannot read {path}: {e.strerror}") from e
    cert_id = certificate_id_of(body, str(path))
    with Outbox(home) as box:
        box.put("certificate", cert_id, body, str(path))
    return cert_id


def destruction_id_of(body: bytes, source: str) -> str:
    """The record id inside a signed destruction record (structure only; the hub verifies it)."""
    try:
        env = parse_envelope(body, expect=TYP_DESTRUCTION)
        payload = parse_json(env.payload_bytes, source)
    except CertError as e:
        raise OutboxError(f"{source} is not a signed destruction record: {e.message}") from e
    record_id = payload.get("record_id") if isinstance(payload, dict) else None
    if not isinstance(record_id, str) or not record_id:
        raise OutboxError(f"{source} has no record_id")
    return record_id


def enqueue_destruction(path: Path, *, home: Path | None = None) -> str:
    """Queue the signed destruction record ``path`` for upload (``PUT /api/v1/destructions/{id}``)."""
    try:
        body = path.read_bytes()
    except OSError as e:
        raise OutboxError(f"cannot read {path}: {e.strerror}") from e
    record_id = destruction_id_of(body, str(path))
    with Outbox(home) as box:
        box.put("destruction", record_id, body, str(path))
    return record_id


def report_id_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def enqueue_report(path: Path, *, home: Path | None = None) -> str:
    """Queue a diagnostics report (``station diagnose --json`` output) for upload; returns its id.

    A report is unsigned; its id is the SHA-256 of its bytes, so re-queuing the same file is a no-op.
    """
    try:
        body = path.read_bytes()
    except OSError as e:
        raise OutboxError(f"cannot read {path}: {e.strerror}") from e
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OutboxError(f"{path} is not a JSON diagnostics report: {e}") from e
    if not isinstance(doc, dict):
        raise OutboxError(f"{path} is not a JSON diagnostics report (not an object)")
    report_id = report_id_of(body)
    with Outbox(home) as box:
        box.put("report", report_id, body, str(path))
    return report_id


def _signed_id(body: bytes, source: str) -> tuple[Kind, str]:
    """(kind, id) of a signed certificate or destruction record; OutboxError for anything else."""
    try:
        return "certificate", certificate_id_of(body, source)
    except OutboxError:
        return "destruction", destruction_id_of(body, source)


def reconcile(home: Path | None = None, cert_dir: Path | None = None) -> int:
    """Queue every ``<id>.json`` certificate (or destruction record) of ``cert_dir`` the outbox does not
    know; returns how many.

    Covers a crash between writing a certificate and queuing it.  Files named after a known id are
    not even read, so this stays cheap with thousands of certificates.
    """
    base = home if home is not None else paths.home()
    directory = cert_dir if cert_dir is not None else base / "certs"
    if not directory.is_dir():
        return 0
    added = 0
    with Outbox(home) as box:
        known = box.known_ids("certificate") | box.known_ids("destruction")
        for p in sorted(directory.glob("*.json")):
            if p.stem in known or p.name.startswith(".") or is_sidecar(p.name) or is_chain_head_file(p.name):
                continue
            try:
                body = p.read_bytes()
                kind, cert_id = _signed_id(body, str(p))
            except OSError:
                continue  # vanished while scanning: nothing to queue
            except OutboxError:
                continue  # not a signed record (e.g. an index file): `station verify` reports those
            if cert_id not in known and box.put(kind, cert_id, body, str(p)):
                known.add(cert_id)
                added += 1
    return added
