"""Errors are classified and no input produces a 500: hostile uploads against a real hub process.

4xx only when the request itself is wrong (JSON ``error`` + ``message``); 503 with Retry-After when
the database fails; every value a valid certificate holds is storable on SQLite and PostgreSQL.
The server's log is checked for tracebacks after each run.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from certs.canonical import canonical_json
from certs.limits import ASSET_NUMBER_MAX, DRIVE_FIELD_MAX, SEQUENCE_MAX
from certs.verify import Verifier
from hub.app import create_app
from hub.db import make_engine
from hub.guard import Limits
from hub.service import Hub
from hub.testing import serve_in_thread
from tests.test_hub_support import cert_at, client_for, live_hub, payload_of, put, sign_raw
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    db_url,
    hub,
    kit,
    org,
    pg_admin_url,
)


@pytest.fixture
def live(db_url: str, hub: Hub, kit: Kit, tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "hub.log"
    with live_hub(db_url, log=log) as url:
        yield url
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "ERROR" not in text, text[-3000:]


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_hostile_reports_are_refused_never_500(live: str, kit: Kit) -> None:

    auth = {"Authorization": f"Bearer {kit.token}", "Content-Type": "application/json"}
    bodies = [
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,  # 200,000 levels deep (1.4 MB: 413)
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,  # 100,000 levels (under 1 MiB)
        _deep(100_000),
        b'{"n": ' + b"9" * 100_000 + b"}",  # an integer of 100,000 digits
        b'{"s": "\xff\xfe"}',  # invalid UTF-8
        b"[1, 2, 3]",
        b"",
        b"\x00" * 1000,
    ]
    for body in bodies:
        rid = hashlib.sha256(body).hexdigest()
        r = httpx.put(f"{live}/api/v1/reports/{rid}", content=body, headers=auth, timeout=30)
        assert r.status_code in (413, 422), (r.status_code, r.text[:200])
        assert r.json()["error"] in ("malformed", "payload_too_large") and r.json()["message"]
    ok = json.dumps({"overall": "reuse", "deep": [[[[1]]]]}).encode()
    rid = hashlib.sha256(ok).hexdigest().upper()  # ids are normalised: uppercase hex works
    assert httpx.put(f"{live}/api/v1/reports/{rid}", content=ok, headers=auth).status_code == 201


def test_hostile_certificates_are_refused_never_500(live: str, kit: Kit) -> None:
    c = client_for(live, kit.token)
    cert_id, good, _ = cert_at(kit, 1, None)
    huge_int = b'{"schema": "tabula.certificate/1", "n": ' + b"7" * 5000 + b"}"
    cases: list[tuple[bytes, str | None, int, str]] = [
        (_deep(150_000), None, 422, "malformed"),
        (b'{"protected": ' * 50_000 + b"1" + b"}" * 50_000, None, 422, "malformed"),
        (sign_raw(kit, huge_int), None, 422, "schema_error"),
        (sign_raw(kit, _deep(50_000)), None, 422, "schema_error"),
        (sign_raw(kit, b"\xff\xfe not utf-8"), None, 422, "schema_error"),
        (b"\xff\xfe\x00garbage", None, 422, "malformed"),
        (good.replace(b'"protected"', b'"protected" ', 1) + b"\xff", None, 422, "malformed"),
        (
            sign_raw(kit, canonical_json(payload_of(kit, asset_number="A" * (ASSET_NUMBER_MAX + 1)))),
            None,
            422,
            "schema_error",
        ),
        (
            sign_raw(kit, canonical_json(payload_of(kit, serial="S" * (DRIVE_FIELD_MAX + 1)))),
            None,
            422,
            "schema_error",
        ),
        (good, "../../etc/passwd", 404, "http_error"),
        (good, "NOT-A-UUID", 422, "bad_id"),
        (good, "%00", 422, "bad_id"),
    ]
    for body, target, status, code in cases:
        url = f"/api/v1/certificates/{target or cert_id}"
        r = c.put(url, content=body)
        assert (r.status_code, r.json().get("error")) == (status, code), (code, r.text[:300])
        assert r.json()["message"]
    r = c.put(f"/api/v1/certificates/{cert_id}", content=good, headers={"Content-Type": "text/html"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    r = c.put(f"/api/v1/certificates/{cert_id}", content=good, headers={"Authorization": b"Bearer \xe9\xff"})
    assert r.status_code == 401
    assert c.get("/api/v1/certificates/%FF%FE").status_code == 404
    assert c.get("/api/v1/certificates", params={"serial": "\x00\ud7ff" * 100}).status_code == 200
    assert c.get("/verify", params={"id": "x" * 10_000}).status_code == 404
    try:  # headers over h11's 16 KiB limit: refused (or the connection is cut), never served
        r = c.get("/healthz", headers={"X-Big": "a" * 300_000})
        assert r.status_code in (400, 431)
    except httpx.TransportError:
        pass
    assert put(c, cert_id, good).status_code == 201
    c.close()


def test_every_value_a_certificate_can_hold_is_storable(live: str, hub: Hub, kit: Kit) -> None:
    c = client_for(live, kit.token)
    big = 2**31 + 5
    cid, body, digest = cert_at(
        kit, big, "ab" * 32, asset="é" * ASSET_NUMBER_MAX, serial="\u4e2d\u6587" * (DRIVE_FIELD_MAX // 2)
    )
    r = put(c, cid, body)
    assert r.status_code == 201, r.text
    assert r.json()["sequence"] == big
    cid2, body2, _ = cert_at(kit, big + 1, digest)
    assert put(c, cid2, body2).status_code == 201
    cid3, body3, _ = cert_at(kit, SEQUENCE_MAX, "cd" * 32, serial="NUL\x00IN-SERIAL")
    r = put(c, cid3, body3)
    assert r.status_code == 201, r.text
    got = httpx.get(f"{live}/api/v1/certificates/{cid3}").json()
    assert (
        got["sequence"] == SEQUENCE_MAX and got["serial"] == "NUL\ufffdIN-SERIAL" and got["verified"] is True
    )
    assert c.get(f"/api/v1/certificates/{cid3}/raw").content == body3  # the signed bytes, untouched
    assert hub.get(cid).asset_number == "é" * ASSET_NUMBER_MAX
    c.close()


def test_a_failing_database_is_503_with_retry_after(
    db_url: str, hub: Hub, kit: Kit, pg_admin_url: str
) -> None:

    cid, body, _ = cert_at(kit, 1, None)
    if db_url.startswith("sqlite"):
        engine = make_engine(db_url, sqlite_busy_timeout=0.3)
        lock = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holding the database: "database is locked"
        broken = Hub(engine, create=False)
    else:
        broken = Hub(make_engine(db_url.rsplit(":", 1)[0] + ":1/nowhere"), create=False)  # nothing listens
        lock = None
    try:
        with serve_in_thread(create_app(broken)) as url:
            h = {"Authorization": f"Bearer {kit.token}", "Content-Type": "application/json"}
            answers = [httpx.put(f"{url}/api/v1/certificates/{cid}", content=body, headers=h, timeout=30)]
            if lock is None:  # (SQLite in WAL mode still serves reads while a writer holds the lock)
                answers.append(httpx.get(f"{url}/api/v1/certificates/{cid}", timeout=30))
            for r in answers:
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "database_unavailable" and int(r.headers["retry-after"]) > 0
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
        broken.engine.dispose()


def test_uppercase_ids_work_on_every_route(live: str, kit: Kit) -> None:
    c = client_for(live, kit.token)
    cid, body, digest = cert_at(kit, 1, None)
    up = cid.upper()
    assert put(c, up, body).status_code == 201  # the upload route normalises too
    assert put(c, f" {up} ", body).status_code == 200
    assert httpx.get(f"{live}/api/v1/certificates/{up}").json()["certificate_id"] == cid
    assert c.get(f"/api/v1/certificates/{up}/raw").content == body
    assert httpx.get(f"{live}/api/v1/certificates/{up}/snapshot").status_code == 200
    assert "Erased and verified" in httpx.get(f"{live}/verify/{up}").text
    assert (
        "Erased and verified" in httpx.get(f"{live}/verify", params={"id": up, "sha256": digest.upper()}).text
    )
    c.close()


def test_security_headers_on_every_answer(live: str, kit: Kit) -> None:

    cid, body, _ = cert_at(kit, 1, None)
    auth = {"Authorization": f"Bearer {kit.token}"}
    answers = [
        httpx.put(f"{live}/api/v1/certificates/{cid}", content=body, headers=auth),
        httpx.get(f"{live}/verify/{cid}"),
        httpx.get(f"{live}/verify"),
        httpx.get(f"{live}/api/v1/certificates/{cid}"),
        httpx.get(f"{live}/api/v1/certificates/{cid}/raw"),  # 401
        httpx.get(f"{live}/nowhere"),  # 404
        httpx.delete(f"{live}/api/v1/certificates/{cid}"),  # 405
        httpx.put(f"{live}/api/v1/certificates/{cid}", content=b"x", headers=auth),  # 422
        httpx.get(f"{live}/"),  # redirect
    ]
    for r in answers:
        h = r.headers
        assert "frame-ancestors 'none'" in h["content-security-policy"], r.url
        assert "script-src" not in h["content-security-policy"]  # default-src 'none': no script at all
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"
        assert h["x-frame-options"] == "DENY"
    page = answers[1].text
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert (
        f"'sha256-{digest}'" in answers[1].headers["content-security-policy"]
    )  # the page's style is allowed


def test_rate_limits_answer_429_with_retry_after(db_url: str, hub: Hub, kit: Kit) -> None:
    cid, body, _ = cert_at(kit, 1, None)
    with live_hub(db_url, "--public-rate", "2", "--public-burst", "5", "--station-rate", "50") as url:
        with httpx.Client(base_url=url) as c:
            codes = [c.get(f"/api/v1/certificates/{cid}").status_code for _ in range(20)]
            assert codes[:5] == [404] * 5 and codes.count(429) >= 10
            limited = c.get(f"/verify/{cid}")
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert limited.json()["error"] == "rate_limited"
        # A station's token has its own budget: the public's exhaustion does not stop its uploads.
        with client_for(url, kit.token) as s:
            assert put(s, cid, body).status_code == 201


def test_public_lookups_verify_each_stored_certificate_once(
    hub: Hub, kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:

    station = hub.authenticate(f"Bearer {kit.token}")
    cid, body, _ = cert_at(kit, 1, None)
    hub.ingest_certificate(station, cid, body)
    calls = []
    real = Verifier.verify_envelope

    def counting(self: Verifier, data: object, path: str) -> object:
        calls.append(path)
        return real(self, data, path)

    monkeypatch.setattr(Verifier, "verify_envelope", counting)
    other = Hub(hub.engine, create=False)  # another hub process: it never saw the upload
    for _ in range(50):
        assert other.find(cid).check.ok
    assert calls == [cid]
    # The process that ingested it verified it then, with the verifier lookups use: none again.
    for _ in range(50):
        assert hub.find(cid).check.ok
    assert calls == [cid]


def test_a_client_hanging_up_mid_upload_is_logged_quietly(live: str, kit: Kit) -> None:
    host, port = live.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port))) as s:
            s.sendall(
                b"PUT /api/v1/certificates/0b3c5e2a-0000-4000-8000-000000000000 HTTP/1.1\r\n"
                b"Host: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {kit.token}\r\nContent-Length: 5000\r\n\r\n".encode()
                + b'{"protected": "'
            )
    assert httpx.get(f"{live}/healthz").status_code == 200  # the fixture then checks the log


def test_a_slowloris_does_not_keep_others_from_being_served(
    db_url: str, hub: Hub, kit: Kit, tmp_path: Path
) -> None:
    with live_hub(db_url, "--read-timeout", "3") as url:
        host, port = url.removeprefix("http://").split(":")
        slow = []
        for i in range(1000):
            s = socket.create_connection((host, int(port)))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + str(i).encode())  # never finished
            slow.append(s)
        t = time.monotonic()
        r = httpx.get(f"{url}/healthz", timeout=10)
        assert r.status_code == 200 and time.monotonic() - t < 2.5  # served while 1,000 are half-sent
        time.sleep(4)
        closed = 0
        for s in slow:
            s.settimeout(2)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                closed += s.recv(1) == b""
            s.close()
        assert closed == 1000  # the server dropped every half-sent request after its deadline
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_requests_over_the_in_flight_cap_are_503_with_retry_after(hub: Hub, kit: Kit) -> None:

    with serve_in_thread(create_app(hub, Limits(max_in_flight=2))) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = []
        for _ in range(2):  # two uploads in progress, their bodies still coming
            s = socket.create_connection((host, int(port)))
            s.sendall(
                b"PUT /api/v1/reports/"
                + b"0" * 64
                + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {kit.token}\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
            slow.append(s)
        deadline = time.monotonic() + 10
        while True:
            r = httpx.get(f"{url}/healthz")
            if r.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert r.status_code == 503 and r.json()["error"] == "overloaded" and r.headers["retry-after"] == "1"
        for s in slow:
            s.close()
        time.sleep(0.3)
        assert httpx.get(f"{url}/healthz").status_code == 200


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_lost_database_connections_are_503_then_the_hub_recovers(
    db_url: str, hub: Hub, kit: Kit, pg_admin_url: str
) -> None:
    """PostgreSQL drops every connection (a restart, a failover): answers are 503, never 500, and
    the next tries succeed on fresh connections (the pool does not ping before each request)."""
    name = db_url.rsplit("/", 1)[1]
    with serve_in_thread(create_app(hub)) as url, client_for(url, kit.token) as c:
        first = cert_at(kit, 1, None)
        assert put(c, first[0], first[1]).status_code == 201
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
        cid, body, _ = cert_at(kit, 2, first[2])
        codes = []
        for _ in range(5):
            r = put(c, cid, body)
            codes.append(r.status_code)
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) > 0
                continue
            break
        assert codes[-1] == 201 and set(codes[:-1]) <= {503}, codes
        assert httpx.get(f"{url}/api/v1/certificates/{cid}").status_code == 200
