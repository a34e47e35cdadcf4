"""A hub that trickles its answer a byte at a time cannot hold `station sync`, the daemon or the drain
lock past the request's deadline.  A real server on loopback: it reads the upload, then sends one byte
every 50 ms for ever (so no per-read timeout ever fires), in the status line or in the body."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.sync import enqueue_certificate, status
from station.sync.drain import SyncDaemon, drain
from station.sync.outbox import Outbox
from tests.test_sync_support import Kit, make_kit, make_org

ROOT = Path(__file__).resolve().parent.parent
PACE = 0.05


class Trickle:
    """Answers every request slowly and for ever: ``"head"`` trickles the status line and headers,
    ``"body"`` sends complete headers then trickles a body that never ends."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests += 1

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._read_request(conn)
                if self.mode == "body":
                    conn.sendall(
                        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 99999\r\n\r\n"
                    )
                else:
                    conn.sendall(b"HTTP/1.1 201 Cre")
                while not self.closed.is_set():
                    conn.sendall(b"a" if self.mode == "body" else b"e")
                    time.sleep(PACE)
            except OSError:
                return  # the client hung up: what we want

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def station(tmp_path: Path) -> Kit:
    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    kit.token = "token-for-a-trickling-hub"
    for p in kit.mint(3):
        enqueue_certificate(p, home=kit.home)
    return kit


@pytest.fixture(params=["head", "body"])
def trickle(request: pytest.FixtureRequest) -> Iterator[Trickle]:
    server = Trickle(request.param)
    yield server
    server.close()


def test_station_sync_ends_at_the_deadline(station: Kit, trickle: Trickle) -> None:
    config = station.config(trickle.url)  # per-read timeout 20 s: never reached at one byte per 50 ms
    cmd = [sys.executable, "-m", "station.sync", "--url", trickle.url, "--token-file", str(config.token_file)]
    env = dict(os.environ, TABULA_HOME=str(station.home))
    started = time.monotonic()
    # Without a deadline this never returns (the server trickles for ever): the timeout fails the test.
    proc = subprocess.run(
        [*cmd, "--deadline", "2", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    result = json.loads(proc.stdout)
    assert proc.returncode == 3, proc.stderr
    assert "within the 2 s deadline" in result["error"] and result["sent"] == 0 and result["pending"] == 3
    # The pass halted at the first slow answer instead of spending a deadline on every document.
    assert trickle.requests == 1 and elapsed >= 2
    st = status(station.home)
    assert st.retrying == 1 and st.retrying_items[0]["failures"] == 1 and "deadline" in (st.last_error or "")


def test_the_drain_lock_and_the_daemon_are_released_at_the_deadline(station: Kit, trickle: Trickle) -> None:
    config = station.config(trickle.url, deadline=1.0, timeout=30.0)
    result = drain(station.home, config)
    assert result.error is not None and "deadline" in result.error
    # The lock is free again: another drain starts at once (and meets the same slow hub).
    again = drain(station.home, config)
    assert not again.busy and again.error is not None
    with Outbox(station.home) as box:
        box.requeue()  # no backoff: the daemon uploads at once
    daemon = SyncDaemon(station.home, config, interval=0.1).start()
    while trickle.requests < 3:  # the daemon's upload is in flight, trickled
        time.sleep(0.01)
    daemon.stop(timeout=10)  # it ends with that upload's deadline
    assert daemon._thread is not None and not daemon._thread.is_alive()
    assert trickle.requests == 3
