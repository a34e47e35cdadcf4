"""The sync client against a real hub on loopback: outages, 5xx, timeouts, lost responses, kill -9,
hub restarts, conflicts, TLS and the background daemon.  Every certificate ends up stored exactly once."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hub.app import create_app
from hub.service import Hub
from hub.testing import free_port, serve_in_thread, wait_port
from station.sync import enqueue_certificate, status
from station.sync.cli import register
from station.sync.config import SyncConfig
from station.sync.drain import Backoff, SyncDaemon, drain
from tests.test_sync_support import Kit, db_url, hub, kit, org, pg_admin_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
NO_WAIT = Backoff(base=0.01, cap=0.02)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def queue(kit: Kit, n: int) -> list[str]:
    paths = kit.mint(n)
    for p in paths:
        enqueue_certificate(p, home=kit.home)
    return [p.stem for p in paths]


def assert_exactly_once(hub: Hub, ids: list[str], kit: Kit) -> None:
    assert hub.count() == len(ids)
    for cid in ids:
        assert hub.get(cid).body == (kit.cert_dir / f"{cid}.json").read_bytes()
    st = status(kit.home)
    assert (st.pending, st.sent, st.rejected) == (0, len(ids), 0)


def drain_until_done(kit: Kit, config: SyncConfig, passes: int = 30) -> int:
    """Drain like the daemon would (without waiting out the backoff); returns the passes needed."""
    for n in range(1, passes + 1):
        if drain(kit.home, config, backoff=NO_WAIT).complete:
            return n
    raise AssertionError(f"not delivered after {passes} passes: {status(kit.home)}")


class Faults:
    """ASGI wrapper around the hub: 503 before the handler, or a response delayed / replaced after it.

    Faults count requests.  Unless ``batches``, the hub shows no batch route (an older hub: 404), so
    the drain sends one certificate per request, as the tests here count them; with ``batches`` a
    fault hits a whole batch (tests/test_sync_batch.py)."""

    def __init__(self, app: Any, batches: bool = False) -> None:
        self.app = app
        self.batches = batches
        self.fail_before = 0
        self.error_after = 0
        self.delay_after = 0
        self.delay = 1.0
        self.slow = 0.0
        self.answers: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith(":batch") and not self.batches:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send(
                {"type": "http.response.body", "body": b'{"error": "not_found", "message": "no route"}'}
            )
            return
        if scope["type"] != "http" or scope["method"] not in ("PUT", "POST"):  # POST: a batch upload
            await self.app(scope, receive, send)
            return
        if self.fail_before > 0:
            self.fail_before -= 1
            await send({"type": "http.response.start", "status": 503, "headers": [(b"retry-after", b"0")]})
            await send(
                {"type": "http.response.body", "body": b'{"error": "maintenance", "message": "later"}'}
            )
            return
        if self.slow:
            await asyncio.sleep(self.slow)
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)

        await self.app(scope, receive, hold)  # the handler has run (and committed) after this
        if scope["method"] == "POST" and held[0]["status"] == 200:  # each certificate's answer
            body = b"".join(m.get("body", b"") for m in held[1:])
            self.answers += [r["http_status"] for r in json.loads(body)["results"]]
        else:
            self.answers.append(held[0]["status"])
        if self.error_after > 0:
            self.error_after -= 1
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"proxy error"})
            return
        if self.delay_after > 0:
            self.delay_after -= 1
            await asyncio.sleep(self.delay)  # longer than the client's timeout
        for message in held:
            await send(message)


class DropProxy:
    """A TCP proxy on loopback that can drop the hub's response (after the hub handled the request)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.drop = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, response: bool) -> None:
        try:
            while data := src.recv(65536):
                if response:
                    with self.lock:
                        drop = self.drop > 0
                        if drop:
                            self.drop -= 1
                            self.dropped += 1
                    if drop:
                        break
                dst.sendall(data)
        except OSError:
            pass  # the other pump closed the pair
        for s in (src, dst):
            with contextlib.suppress(OSError):  # already closed by the other pump
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def faulty(hub: Hub) -> Iterator[tuple[Faults, str]]:
    faults = Faults(create_app(hub))
    with serve_in_thread(faults) as url:
        yield faults, url


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    b = Backoff(base=2.0, cap=60.0)
    assert b.delay(0) == 0.0
    assert [b.delay(n, rng=lambda: 0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [b.delay(n, rng=lambda: 1.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert b.delay(30, rng=lambda: 1.0) == 60.0
    assert len({round(b.delay(5), 6) for _ in range(20)}) > 1  # jittered


@sqlite_only
def test_hub_down_then_back(hub: Hub, kit: Kit) -> None:
    ids = queue(kit, 20)
    port = free_port()
    config = kit.config(f"http://127.0.0.1:{port}", timeout=2.0)
    before = time.time()
    result = drain(kit.home, config)
    assert result.error is not None and "hub unreachable" in result.error and result.sent == 0
    st = status(kit.home)
    assert st.pending == 20 and st.consecutive_failures == 1 and st.last_success_at is None
    assert st.retrying == 0  # an unreachable hub is not the documents' fault: none backs off alone
    assert st.last_error == result.error and st.next_attempt_at is not None and st.next_attempt_at > before
    assert drain(kit.home, config, respect_backoff=True).deferred  # a background drain waits
    with serve_in_thread(create_app(hub), port=port):
        result = drain(kit.home, config)
    assert result.complete and result.sent == 20
    st = status(kit.home)
    assert st.last_error is None and st.consecutive_failures == 0 and st.last_success_at is not None
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_5xx_timeouts_and_lost_responses_store_each_certificate_once(
    hub: Hub, kit: Kit, faulty: tuple[Faults, str]
) -> None:
    faults, url = faulty
    proxy = DropProxy(int(url.rsplit(":", 1)[1]))
    config = kit.config(f"http://127.0.0.1:{proxy.port}", timeout=0.5)
    ids = queue(kit, 30)
    faults.fail_before = 3  # 503 before the handler
    faults.error_after = 2  # stored, then a 500
    faults.delay_after = 2  # stored, then the answer comes too late
    faults.delay = 1.0
    proxy.drop = 3  # stored, then the connection dies with the answer
    passes = drain_until_done(kit, config)
    assert passes > 1 and proxy.dropped == 3
    assert faults.answers.count(200) >= 2  # re-uploads after lost answers, acknowledged as already stored
    assert faults.answers.count(201) == 30
    assert_exactly_once(hub, ids, kit)
    proxy.close()


@sqlite_only
def test_retries_within_one_drain(hub: Hub, kit: Kit, faulty: tuple[Faults, str]) -> None:
    faults, url = faulty
    ids = queue(kit, 5)
    faults.fail_before = 2  # the first two uploads get 503 (Retry-After: 0)
    sleeps: list[float] = []
    result = drain(
        kit.home, kit.config(url), retries=2, backoff=Backoff(base=0.2, cap=1.0), sleep=sleeps.append
    )
    # The two documents that failed waited their own backoff (0.1-0.2 s) while the other three went on,
    # and were tried again within the same call.
    assert result.complete and result.sent == 5 and result.failed == 2
    assert faults.answers == [201] * 5 and 1 <= len(sleeps) <= 2 and all(0 <= s <= 0.2 for s in sleeps)
    assert_exactly_once(hub, ids, kit)


def _sync_cmd(kit: Kit, url: str) -> list[str]:
    token_file = kit.home / "sync" / "token"
    return [sys.executable, "-m", "station.sync", "--url", url, "--token-file", str(token_file), "--json"]


@sqlite_only
def test_drainer_killed_mid_drain_loses_at_most_the_upload_in_flight(
    hub: Hub, kit: Kit, faulty: tuple[Faults, str]
) -> None:
    faults, url = faulty
    faults.slow = 0.01
    ids = queue(kit, 150)
    config = kit.config(url)
    env = dict(os.environ, TABULA_HOME=str(kit.home))
    proc = subprocess.Popen(_sync_cmd(kit, url), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while hub.count() < 60:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the upload in flight, if any, finishes on the hub
    assert 60 <= hub.count() < 150
    # Progress is recorded per document: at most the one in flight is stored but not marked sent.
    assert hub.count() - status(kit.home).sent in (0, 1)
    faults.slow = 0.0
    assert drain_until_done(kit, config) == 1
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_hub_restarted_mid_drain(tmp_path: Path, hub: Hub, kit: Kit, db_url: str) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "hub", "serve", "--db", db_url, "--port", str(port)]

    def start() -> subprocess.Popen[bytes]:
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, 20)
        return p

    ids = queue(kit, 120)
    config = kit.config(f"http://127.0.0.1:{port}", timeout=2.0)
    server = start()
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(drain(kit.home, config)))
    t.start()
    deadline = time.monotonic() + 60
    while hub.count() < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait()
    t.join(30)
    assert results and (results[0].complete or results[0].error)
    server = start()
    try:
        drain_until_done(kit, config)
    finally:
        server.terminate()
        server.wait(10)
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_conflicts_are_rejected_and_a_bad_token_stops_the_pass(
    hub: Hub, kit: Kit, faulty: tuple[Faults, str]
) -> None:
    import dataclasses

    _, url = faulty
    genuine = kit.certificate()
    genuine_path = kit.cert_dir / f"{genuine.certificate_id}.json"
    kit.cert_dir.mkdir(parents=True, exist_ok=True)
    genuine_path.write_bytes(kit.sign(genuine))
    kit.sequence, kit.previous = 0, None
    forged = dataclasses.replace(kit.certificate(serial="FORGED"), certificate_id=genuine.certificate_id)
    r = httpx.put(
        f"{url}/api/v1/certificates/{genuine.certificate_id}",
        content=kit.sign(forged),
        headers={"Authorization": f"Bearer {kit.token}"},
    )
    assert r.status_code == 201
    enqueue_certificate(genuine_path, home=kit.home)
    bad = kit.config(url)
    assert bad.token_file is not None
    bad.token_file.write_text("wrong-token\n")
    result = drain(kit.home, bad)
    assert result.error is not None and "401" in result.error and status(kit.home).pending == 1
    result = drain(kit.home, kit.config(url))
    assert result.rejected == 1 and result.pending == 0
    st = status(kit.home)
    assert st.rejected == 1 and "id_conflict" in st.rejected_items[0]["error"]
    out = io.StringIO()
    args = _parse(["sync", "--status", "--json"])
    assert args.func(args, out=out, home=kit.home) == 0
    assert json.loads(out.getvalue())["rejected"] == 1


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tabula test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


@sqlite_only
def test_tls_with_a_configured_ca_bundle(tmp_path: Path, hub: Hub, kit: Kit) -> None:
    ca, cert, key = _tls_files(tmp_path)
    ids = queue(kit, 3)
    with serve_in_thread(create_app(hub), ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        assert url.startswith("https://")
        untrusted = drain(kit.home, kit.config(url))
        assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        assert hub.count() == 0
        trusted = drain(kit.home, kit.config(url, ca_bundle=ca))
        assert trusted.complete and trusted.sent == 3
    assert_exactly_once(hub, ids, kit)


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@sqlite_only
def test_background_daemon_drains_when_the_hub_comes_back(hub: Hub, kit: Kit) -> None:
    port = free_port()
    config = kit.config(f"http://127.0.0.1:{port}", timeout=1.0)
    daemon = SyncDaemon(kit.home, config, interval=0.2, backoff=Backoff(base=0.1, cap=0.3)).start()
    try:
        ids = queue(kit, 10)
        daemon.wake()
        _wait(lambda: status(kit.home).consecutive_failures >= 2)  # retried with backoff while down
        with serve_in_thread(create_app(hub), port=port):
            _wait(lambda: status(kit.home).pending == 0)
            more = queue(kit, 5)
            daemon.wake()
            _wait(lambda: status(kit.home).pending == 0)
    finally:
        daemon.stop()
    assert_exactly_once(hub, ids + more, kit)


@pytest.mark.parametrize(
    ("status_code", "body", "verdict", "halts"),
    [
        (201, {"status": "stored"}, "sent", False),
        (200, {"status": "already_stored"}, "sent", False),
        (409, {"status": "already_stored"}, "sent", False),
        (409, {"error": "id_conflict", "message": "different content"}, "rejected", False),
        (422, {"error": "chain_break", "message": "#3 does not link"}, "rejected", False),
        (413, {"error": "payload_too_large", "message": ""}, "rejected", False),
        (400, "not json", "rejected", False),
        (401, {"error": "unauthorized", "message": "unknown station token"}, "halt", True),
        (403, {"error": "station_revoked", "message": "revoked"}, "halt", True),
        (403, {"error": "foreign_signature", "message": "another station's key"}, "rejected", False),
        (404, {"error": "not_found", "message": ""}, "halt", True),
        (308, {}, "halt", True),
        (429, {"error": "rate_limited", "message": ""}, "halt", True),
        (408, {}, "retry", False),
        (500, "Internal Server Error", "retry", False),
        (503, {"error": "unavailable", "message": "database"}, "retry", False),
    ],
)
def test_what_each_answer_means(status_code: int, body: object, verdict: str, halts: bool) -> None:
    from station.sync.client import classify

    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer = classify(httpx.Response(status_code, content=content, headers={"retry-after": "12"}))
    assert (answer.verdict, answer.halt) == (verdict, halts)
    if verdict in ("retry", "halt") and status_code in (429, 503):
        assert answer.retry_after == 12.0
    if isinstance(body, dict) and "error" in body and verdict == "rejected":
        assert answer.code == body["error"] and str(status_code) in answer.message


def test_retry_after_in_seconds_or_as_a_date() -> None:
    from email.utils import formatdate

    from station.sync.client import _retry_after

    def after(value: str) -> float | None:
        return _retry_after(httpx.Response(503, headers={"retry-after": value}))

    assert (after("5"), after("-3"), after("1e9"), after("nan"), after("soon")) == (
        5.0,
        0.0,
        3600.0,
        None,
        None,
    )
    in_30 = after(formatdate(time.time() + 30, usegmt=True))
    assert in_30 is not None and 25 <= in_30 <= 31
    assert after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
