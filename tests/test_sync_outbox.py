"""The durable outbox: queued before anything is sent, idempotent, and it survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from station.sync import enqueue_certificate, enqueue_report, status
from station.sync.errors import OutboxConflict, OutboxError
from station.sync.outbox import SCHEMA_VERSION, Outbox, db_path, reconcile
from tests.test_sync_support import make_kit, make_org

ROOT = Path(__file__).resolve().parent.parent


def test_enqueue_is_durable_idempotent_and_refuses_conflicts(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    a, b = kit.mint(2)
    assert enqueue_certificate(a, home=kit.home) == a.stem
    assert enqueue_certificate(a, home=kit.home) == a.stem  # the same file again: no-op
    enqueue_certificate(b, home=kit.home)
    # What a fresh process sees: WAL, synchronous=FULL, both rows with the exact bytes.
    conn = sqlite3.connect(db_path(kit.home))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = dict(conn.execute("SELECT doc_id, body FROM items").fetchall())
    assert rows == {a.stem: a.read_bytes(), b.stem: b.read_bytes()}
    with Outbox(kit.home) as box:
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    # Another file claiming a queued id with different content is refused, the queued bytes kept.
    forged = tmp_path / "forged.json"
    forged.write_bytes(a.read_bytes() + b" ")
    with pytest.raises(OutboxConflict):
        enqueue_certificate(forged, home=kit.home)
    st = status(kit.home)
    assert (st.pending, st.sent, st.rejected) == (2, 0, 0)


def test_enqueue_refuses_what_is_not_a_certificate_or_report(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    with pytest.raises(OutboxError, match="not a signed certificate"):
        enqueue_certificate(junk, home=tmp_path)
    with pytest.raises(OutboxError, match="cannot read"):
        enqueue_certificate(tmp_path / "missing.json", home=tmp_path)
    bad = tmp_path / "report.json"
    bad.write_text("[1, 2]")
    with pytest.raises(OutboxError, match="not a JSON diagnostics report"):
        enqueue_report(bad, home=tmp_path)
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"x": "y" * (1024 * 1024)}))
    with pytest.raises(OutboxError, match="more than"):
        enqueue_report(big, home=tmp_path)
    report = tmp_path / "diag.json"
    report.write_text('{"schema": 1, "overall": "reuse"}')
    rid = enqueue_report(report, home=tmp_path)
    assert rid == enqueue_report(report, home=tmp_path) and len(rid) == 64
    assert status(tmp_path).pending == 1


def test_reconcile_queues_certificates_written_but_never_queued(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    paths = kit.mint(5)
    enqueue_certificate(paths[0], home=kit.home)
    (kit.cert_dir / "certificate.json").write_text("{}")  # not a certificate: ignored
    assert reconcile(kit.home) == 4
    assert reconcile(kit.home) == 0
    with Outbox(kit.home) as box:
        assert box.known_ids("certificate") == {p.stem for p in paths}


def test_status_without_an_outbox_creates_nothing(tmp_path: Path) -> None:
    st = status(tmp_path)
    assert (st.pending, st.sent, st.last_success_at, st.last_error) == (0, 0, None, None)
    assert not db_path(tmp_path).exists()


_ENQUEUE_FOREVER = """
import sys
from pathlib import Path
from station.sync import enqueue_certificate
home = Path(sys.argv[1])
for p in sorted((home / "certs").glob("*.json")):
    enqueue_certificate(p, home=home)
    print(p.stem, flush=True)
"""


def test_every_acknowledged_enqueue_survives_kill_9(tmp_path: Path) -> None:
    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    kit.mint(300)
    proc = subprocess.Popen(
        [sys.executable, "-c", _ENQUEUE_FOREVER, str(kit.home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 40:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    acknowledged += [line.strip() for line in proc.stdout if line.strip()]
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(db_path(kit.home))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    queued = {r[0] for r in conn.execute("SELECT doc_id FROM items")}
    assert set(acknowledged) <= queued and len(queued) < 300
    conn.close()
    # The rest are picked up from the certificate directory: nothing is lost.
    assert reconcile(kit.home) == 300 - len(queued)
    assert status(kit.home).pending == 300


def test_boot_parameter_names_the_hub_unless_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from station.sync.config import SyncConfig, load_config, save_config

    monkeypatch.setenv("TABULA_SYNC", "https://hub.example.org")
    assert load_config(tmp_path).url == "https://hub.example.org"
    save_config(SyncConfig(url="https://saved.example.org", token_file=tmp_path / "t"), tmp_path)
    assert load_config(tmp_path).url == "https://saved.example.org"


# The schema the first release created (station/sync/outbox.py before schema versions), verbatim: an
# outbox written by it must keep working, migrated in place.
_V1_SCHEMA = """
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


def write_v1_outbox(home: Path, paths: list[Path], states: list[tuple[str, str | None]]) -> None:
    """An outbox as the first release left it: its statements for queuing and settling uploads."""
    import hashlib
    import time

    db_path(home).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path(home), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_V1_SCHEMA)
    for p, (state, error) in zip(paths, states, strict=True):
        body = p.read_bytes()
        conn.execute(
            "INSERT INTO items (doc_id, kind, body, sha256, source, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (p.stem, "certificate", body, hashlib.sha256(body).hexdigest(), str(p), time.time()),
        )
        if state == "sent":
            conn.execute(
                "UPDATE items SET state = 'sent', sent_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE doc_id = ?",
                (time.time(), p.stem),
            )
        elif state == "rejected":
            conn.execute(
                "UPDATE items SET state = 'rejected', attempts = attempts + 1, last_error = ? WHERE doc_id = ?",
                (error, p.stem),
            )
        elif error:
            conn.execute(
                "UPDATE items SET attempts = attempts + 1, last_error = ? WHERE doc_id = ?", (error, p.stem)
            )
    for key, value in {
        "consecutive_failures": "3",
        "last_error": "network error",
        "last_success_at": "1.5",
    }.items():
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
    conn.close()


def test_an_outbox_of_the_first_release_is_migrated_in_place(tmp_path: Path) -> None:
    import threading

    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    paths = kit.mint(5)
    ids = [p.stem for p in paths]
    own_409 = f"HTTP 409 chain_duplicate: sequence 2 of this station is already taken by certificate {ids[1]}"
    write_v1_outbox(
        kit.home,
        paths,
        [
            ("sent", None),
            ("rejected", own_409),  # the old race: stored on the hub, wrongly marked rejected
            ("rejected", "HTTP 422 chain_break: #3 does not link to the stored certificate #2"),
            ("pending", "network error: ConnectError"),
            ("pending", None),
        ],
    )
    # Several processes may open it at once (the TUI's daemon, a status poll, `station sync`).
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            with Outbox(kit.home) as box:
                box.counts()
        except BaseException as e:  # noqa: BLE001 (collected for the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = sqlite3.connect(db_path(kit.home))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    (table,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items'").fetchone()
    assert "'destruction'" in table  # version 3 takes destruction records
    columns = {r[1] for r in conn.execute("PRAGMA table_info(items)")}
    assert {
        "failures",
        "next_attempt_at",
        "last_attempt_at",
        "error_code",
        "log_proof",
        "log_proof_at",
    } <= columns
    rows = {r[0]: r[1:] for r in conn.execute("SELECT doc_id, state, attempts, body FROM items")}
    conn.close()
    assert {i: r[0] for i, r in rows.items()} == dict(
        zip(ids, ["sent", "pending", "rejected", "pending", "pending"], strict=True)
    )
    assert all(rows[p.stem][2] == p.read_bytes() for p in paths) and rows[ids[3]][1] == 1
    st = status(kit.home)
    assert (st.pending, st.sent, st.rejected, st.retrying) == (3, 1, 1, 0)
    assert st.rejected_items[0]["id"] == ids[2] and "chain_break" in st.rejected_items[0]["error"]
    assert (st.consecutive_failures, st.last_error, st.last_success_at) == (3, "network error", 1.5)
    assert st.without_proof == 1  # sent before the hub had a log: its proof is fetched by a later pass
    with Outbox(kit.home) as box:
        assert box.due(0.0)[:1] == [2]  # the requeued one is due at once, in queue order
        assert box.requeue(ids[2]) == 1
    assert status(kit.home).pending == 4


def test_an_outbox_from_a_newer_station_is_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path):
        pass
    conn = sqlite3.connect(db_path(tmp_path))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(OutboxError, match="newer station"):
        Outbox(tmp_path)
