"""Destruction records go to the hub like certificates: ``PUT /api/v1/destructions/{id}``.

The hub's side of that route is built elsewhere; here a small fake hub on loopback answers as the
contract says (201 stored, 200 already stored with the same bytes, 4xx ``{"error", "message"}`` refused
for good, 429 / 503 with ``Retry-After`` transient), and the client is held to it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from certs.issue import issue_destruction
from station.sync import status
from station.sync.config import SyncConfig, write_token
from station.sync.drain import Backoff, drain
from station.sync.outbox import Outbox, enqueue_destruction, reconcile
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, Station, make_station

NO_WAIT = Backoff(base=0.01, cap=0.02)


class FakeHub(ThreadingHTTPServer):
    """Answers PUTs from a script: a list of (status, json body, headers), then 201 for new ids."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[int, dict[str, str], dict[str, str]]] = []
        self.stored: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, bytes]] = []  # (path, authorization, body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        hub = self.server
        hub.requests.append((self.path, self.headers.get("Authorization", ""), body))
        if hub.script:
            code, doc, headers = hub.script.pop(0)
        elif not self.path.startswith("/api/v1/destructions/"):
            code, doc, headers = 404, {"error": "not_found", "message": "no such route"}, {}
        else:
            doc_id = self.path.rsplit("/", 1)[1]
            code = 200 if hub.stored.get(doc_id) == body else 201
            hub.stored[doc_id] = body
            doc, headers = {"status": "stored"}, {}
        data = json.dumps(doc).encode()
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def destruction(tmp_path: Path) -> tuple[Station, Path, str]:
    station = make_station(tmp_path / "station")
    d = issue_destruction(
        records.failed_bad_ranges(),
        key_dir=station.key_dir,
        cert_dir=station.cert_dir,
        method="drill",
        performed_by="Camille Martin",
        settings=SETTINGS,
    )
    return station, d.json_path, d.record_id


def config(home: Path, url: str) -> SyncConfig:
    token_file = home / "sync" / "token"
    write_token(token_file, "tok-123")
    return SyncConfig(url=url, token_file=token_file)


def test_a_destruction_record_is_put_to_its_route_once(tmp_path: Path, fake_hub: FakeHub) -> None:
    home = tmp_path / "home"
    _station, path, record_id = destruction(tmp_path)
    assert enqueue_destruction(path, home=home) == record_id
    assert enqueue_destruction(path, home=home) == record_id  # idempotent
    fake_hub.script = [(503, {"error": "busy", "message": "database busy"}, {"Retry-After": "0"})]
    cfg = config(home, fake_hub.url)
    for _ in range(5):
        if drain(home, cfg, backoff=NO_WAIT).complete:
            break
    assert fake_hub.stored == {record_id: path.read_bytes()}
    paths = [p for p, _a, _b in fake_hub.requests]
    assert paths == [f"/api/v1/destructions/{record_id}"] * 2  # the 503, then the 201
    assert all(a == "Bearer tok-123" for _p, a, _b in fake_hub.requests)
    st = status(home)
    assert (st.pending, st.sent, st.rejected) == (0, 1, 0)
    with Outbox(home) as box:
        assert box.state_of("destruction", record_id) == "sent"


def test_a_permanent_refusal_keeps_the_hubs_reason(tmp_path: Path, fake_hub: FakeHub) -> None:
    home = tmp_path / "home"
    _station, path, record_id = destruction(tmp_path)
    enqueue_destruction(path, home=home)
    fake_hub.script = [(422, {"error": "schema_error", "message": "unknown destruction method"}, {})]
    drain(home, config(home, fake_hub.url), backoff=NO_WAIT)
    st = status(home)
    assert (st.pending, st.rejected) == (0, 1)
    assert st.rejected_items[0]["id"] == record_id and st.rejected_items[0]["code"] == "schema_error"


def test_already_stored_counts_as_sent_and_429_halts(tmp_path: Path, fake_hub: FakeHub) -> None:
    home = tmp_path / "home"
    _station, path, record_id = destruction(tmp_path)
    enqueue_destruction(path, home=home)
    fake_hub.script = [(429, {"error": "rate_limited", "message": "slow down"}, {"Retry-After": "3600"})]
    result = drain(home, config(home, fake_hub.url), backoff=NO_WAIT)
    assert not result.complete and status(home).pending == 1  # transient: nothing blamed
    fake_hub.script = [(200, {"status": "stored"}, {})]  # the hub had it already
    assert drain(home, config(home, fake_hub.url), backoff=NO_WAIT).complete
    assert status(home).sent == 1


def test_reconcile_queues_a_destruction_record_a_crash_left_behind(tmp_path: Path) -> None:
    home = tmp_path / "home"
    station, path, record_id = destruction(tmp_path)
    assert reconcile(home, station.cert_dir) == 1
    with Outbox(home) as box:
        assert box.state_of("destruction", record_id) == "pending"
