"""The durable outbox: every signed certificate and diagnostics report, queued before anything is sent.

A single SQLite database, ``$TABULA_HOME/outbox/outbox.sqlite3``, in WAL mode with
``synchronous=FULL``: once :func:`enqueue_certificate` returns, the document survives kill -9, a power
cut or a reboot (on the live image ``$TABULA_HOME`` is the persistence partition).  Enqueuing is
local only and never waits for the network.

Each row is one document to upload, keyed by its id (the certificate id; for an unsigned diagnostics
report the SHA-256 of its bytes), with the exact bytes to send.  The sync client marks rows *sent*
(the hub acknowledged them) or *rejected* (the hub refused them for good, e.g. a 409 conflict);
rows stay in the table as a record of what was delivered.  Because uploads are idempotent (the hub
answers 200 to a byte-identical re-upload), a row may be sent twice after a crash but is stored once.

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
from certs.errors import CertError
from certs.jws import TYP_CERTIFICATE, parse_envelope
from host import paths
from station.sync.errors import OutboxConflict, OutboxError

Kind = Literal["certificate", "report"]
State = Literal["pending", "sent", "rejected"]

OUTBOX_DIR = "outbox"
DB_NAME = "outbox.sqlite3"
MAX_DOCUMENT_BYTES = 1024 * 1024  # the hub refuses larger uploads; refuse them here, loudly

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    doc_id      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('certificate', 'report')),
    body        BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'rejected')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    sent_at     REAL,
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (kind, doc_id)
);
CREATE INDEX IF NOT EXISTS items_pending ON items (state, seq);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


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


class Outbox:
    """One connection to the outbox database (one per thread; processes may share the file)."""

    def __init__(self, home: Path | None = None, *, create: bool = True) -> None:
        self.path = db_path(home)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            if create:
                self.conn.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise OutboxError(f"cannot open the outbox {self.path}: {e}") from e

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise OutboxError(f"outbox {self.path} is busy or broken: {e}") from e
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
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

    def known_ids(self, kind: Kind) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT doc_id FROM items WHERE kind = ?", (kind,))}

    def due(self, limit: int, after_seq: int = 0) -> list[Item]:
        """Pending items in queue order (oldest first), after ``after_seq``."""
        rows = self.conn.execute(
            "SELECT seq, doc_id, kind, body, sha256, attempts FROM items"
            " WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [Item(seq=r[0], doc_id=r[1], kind=r[2], body=r[3], sha256=r[4], attempts=r[5]) for r in rows]

    def settle(
        self,
        sent: list[int],
        rejected: list[tuple[int, str]],
        retry: list[tuple[int, str]],
        meta: Mapping[str, str | None],
    ) -> None:
        """Record the outcome of a batch of uploads in one durable transaction."""
        now = time.time()
        with self.transaction() as c:
            c.executemany(
                "UPDATE items SET state = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE seq = ?",
                [(now, s) for s in sent],
            )
            c.executemany(
                "UPDATE items SET state = 'rejected', attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(err, s) for s, err in rejected],
            )
            c.executemany(
                "UPDATE items SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(err, s) for s, err in retry],
            )
            for key, value in meta.items():
                if value is None:
                    c.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    c.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (key, value),
                    )

    def requeue_rejected(self) -> int:
        """Put rejected items back in the queue (after an administrator fixed the cause)."""
        with self.transaction() as c:
            return c.execute(
                "UPDATE items SET state = 'pending', last_error = NULL WHERE state = 'rejected'"
            ).rowcount

    # --- reading --------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "sent": 0, "rejected": 0}
        for state, n in self.conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            out[state] = n
        return out

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def rejected(self, limit: int = 20) -> list[tuple[str, str, str]]:
        return [
            (r[0], r[1], r[2] or "")
            for r in self.conn.execute(
                "SELECT kind, doc_id, last_error FROM items WHERE state = 'rejected' ORDER BY seq LIMIT ?",
                (limit,),
            )
        ]

    def state_of(self, kind: Kind, doc_id: str) -> State | None:
        row = self.conn.execute(
            "SELECT state FROM items WHERE kind = ? AND doc_id = ?", (kind, doc_id)
        ).fetchone()
        return None if row is None else row[0]


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


def reconcile(home: Path | None = None, cert_dir: Path | None = None) -> int:
    """Queue every ``<id>.json`` certificate of ``cert_dir`` the outbox does not know; returns how many.

    Covers a crash between writing a certificate and queuing it.  Files named after a known id are
    not even read, so this stays cheap with thousands of certificates.
    """
    base = home if home is not None else paths.home()
    directory = cert_dir if cert_dir is not None else base / "certs"
    if not directory.is_dir():
        return 0
    added = 0
    with Outbox(home) as box:
        known = box.known_ids("certificate")
        for p in sorted(directory.glob("*.json")):
            if p.stem in known or p.name.startswith("."):
                continue
            try:
                body = p.read_bytes()
                cert_id = certificate_id_of(body, str(p))
            except OSError:
                continue  # vanished while scanning: nothing to queue
            except OutboxError:
                continue  # not a certificate (e.g. an index file): `station verify` reports those
            if cert_id not in known and box.put("certificate", cert_id, body, str(p)):
                known.add(cert_id)
                added += 1
    return added
