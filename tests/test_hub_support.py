"""Helpers of the hub tests (no tests here): a REAL hub process, certificates at chosen places.

``live_hub(db_url)`` starts ``python -m hub serve`` (the command operators run, with its uvicorn
limits) on a loopback port in its own process, so parallel clients in this process race for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from certs.canonical import b64url_encode, canonical_json
from certs.jws import TYP_CERTIFICATE, jwk_of, kid_of
from hub.testing import free_port, wait_port
from tests.test_sync_support import Kit

ROOT = Path(__file__).resolve().parent.parent


def start_hub(db_url: str, port: int, *extra: str, out: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """``station-hub serve`` in a subprocess on ``port`` (rate limits off unless given); waits for it."""
    argv = [sys.executable, "-m", "hub", "serve", "--db", db_url, "--port", str(port)]
    if not any(a.startswith("--public-rate") for a in extra):
        argv += ["--public-rate", "0", "--station-rate", "0"]
    proc = subprocess.Popen([*argv, *extra], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise
    return proc


@contextmanager
def live_hub(db_url: str, *extra: str, log: Path | None = None) -> Iterator[str]:
    """``station-hub serve`` in a subprocess; yields its base URL.  Rate limits off unless given."""
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = start_hub(db_url, port, *extra, out=out)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


def cert_at(kit: Kit, sequence: int, previous: str | None, **kw: Any) -> tuple[str, bytes, str]:
    """A signed certificate of ``kit`` at ``sequence`` claiming ``previous``: (id, bytes, digest)."""
    kit.sequence, kit.previous = sequence - 1, previous
    cert = kit.certificate(**kw)
    body = kit.sign(cert)
    return cert.certificate_id, body, str(kit.previous)


def fake_hash(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def put(client: httpx.Client, cert_id: str, body: bytes) -> httpx.Response:
    return client.put(f"/api/v1/certificates/{cert_id}", content=body)


def client_for(url: str, token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together by a barrier; returns their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:  # noqa: BLE001  (reported as the result, asserted by the test)
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def verify_offline(paths: list[Path], trust_dir: Path) -> dict[str, Any]:
    """``station verify --trust DIR --json FILES`` as an auditor runs it: its JSON report."""
    station = Path(sys.executable).parent / "station"
    r = subprocess.run(
        [str(station), "verify", "--trust", str(trust_dir), "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=False,
    )
    assert r.returncode in (0, 1), r.stderr
    report: dict[str, Any] = json.loads(r.stdout)
    return report


def sign_raw(kit: Kit, payload: bytes, header: dict[str, Any] | None = None) -> bytes:
    """A flattened JWS over arbitrary payload bytes, signed by ``kit`` (for hostile payloads)."""

    pub = kit.key.private.public_key()
    protected = b64url_encode(
        canonical_json({"alg": "EdDSA", "typ": TYP_CERTIFICATE, "kid": kid_of(pub), "jwk": jwk_of(pub)})
    )
    enc = b64url_encode(payload)
    sig = b64url_encode(kit.key.private.sign(f"{protected}.{enc}".encode()))
    env = {"protected": protected, "payload": enc, "signature": sig}
    env["header"] = header if header is not None else {"endorsement": json.loads(kit.endorsement)}
    return json.dumps(env).encode()


def payload_of(kit: Kit, **media: Any) -> dict[str, Any]:
    """A valid certificate payload of ``kit`` (next in its chain) with ``media`` fields overridden."""
    cert = kit.certificate()
    doc = cert.to_dict()
    doc["media"].update(media)
    return doc
