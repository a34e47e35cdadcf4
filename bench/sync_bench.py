"""Benchmark: traceability sync rates (certificates per second).

* enqueue: certificates queued in the durable outbox (one fsync'd SQLite transaction each, as the
  station does when it issues them);
* ingest: the hub verifying and storing uploads (HTTP PUT over loopback, one connection, keep-alive);
* drain: the station's ``station sync`` emptying an outbox of N certificates into the hub end to end,
  in batches (its default, 50 a request) and one per request (``batch = 1``, as to an older hub).

    python3 bench/sync_bench.py [--count 1000] [--db sqlite|postgresql]

Certificates are real (signed with an endorsed station key, chained); the hub runs in-process with
uvicorn on 127.0.0.1 and its database is SQLite (WAL, synchronous=FULL) or a throwaway PostgreSQL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from hub.app import create_app
from hub.guard import Limits
from hub.service import Hub
from hub.testing import create_database, postgres_cluster, serve_in_thread
from station.sync import enqueue_certificate, status
from station.sync.drain import drain
from tests.test_sync_support import enrolled, make_kit, make_org


@contextmanager
def database(kind: str, root: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{root / 'hub.sqlite3'}"
        return
    with postgres_cluster() as admin:
        yield create_database(admin, "bench")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = ap.parse_args()
    n = args.count
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as url:
        root = Path(tmp)
        hub = Hub(url)
        org = make_org(root)
        hub.add_organisation(org.key.name, org.pem)
        direct = enrolled(hub, org, make_kit(root, org, "bench-direct"))
        station = enrolled(hub, org, make_kit(root, org, "bench-sync"))
        single = enrolled(hub, org, make_kit(root, org, "bench-sync-1"))

        t = time.perf_counter()
        paths = station.mint(n)
        print(f"signed {n} certificates (no PDF): {n / (time.perf_counter() - t):,.0f}/s")
        t = time.perf_counter()
        for p in paths:
            enqueue_certificate(p, home=station.home)
        print(f"enqueue (fsync'd outbox)         : {n / (time.perf_counter() - t):,.0f}/s")
        for p in single.mint(n):
            enqueue_certificate(p, home=single.home)

        bodies = [(p.stem, p.read_bytes()) for p in direct.mint(n)]
        with serve_in_thread(create_app(hub, Limits(public_rate=0, station_rate=0))) as base:
            headers = {"Authorization": f"Bearer {direct.token}", "Content-Type": "application/json"}
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                t = time.perf_counter()
                for cid, body in bodies:
                    r = client.put(f"/api/v1/certificates/{cid}", content=body)
                    assert r.status_code == 201, r.text
                dt = time.perf_counter() - t
                print(f"hub ingest ({args.db:10s})         : {n / dt:,.0f}/s  ({n} PUTs in {dt:.2f} s)")
                t = time.perf_counter()
                for cid, body in bodies:
                    assert client.put(f"/api/v1/certificates/{cid}", content=body).status_code == 200
                dt = time.perf_counter() - t
                print(f"hub re-upload (already stored)   : {n / dt:,.0f}/s")
            for kit, batch in ((single, 1), (station, 50)):
                t = time.perf_counter()
                result = drain(kit.home, kit.config(base, batch=batch))
                dt = time.perf_counter() - t
                assert result.complete and result.sent == n, result
                assert status(kit.home).pending == 0
                how = "one per request" if batch == 1 else f"batches of {batch}"
                print(f"station sync drain, {how:15s}: {n / dt:,.0f}/s  ({n} certificates in {dt:.2f} s)")
            assert hub.count() == 3 * n
        hub.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
