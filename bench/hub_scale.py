"""Benchmark: the hub at scale on PostgreSQL (ingest rate, lookup latency, size, memory).

    python3 bench/hub_scale.py [--stations 128] [--sizes 10000,100000,1000000] [--concurrency 16]
                               [--http-sample 4000] [--lookups 200] [--json results.json]

What it does, honestly:

* a throwaway PostgreSQL 15 cluster (``hub.testing.postgres_cluster``), 2 organisations and
  ``--stations`` enrolled station keys, each with its organisation's endorsement;
* certificates are **real**: built once per station by the certificate builder (as
  ``certs.issue`` does), then re-signed per certificate with a new id, sequence, previous-hash,
  serial and asset number (Ed25519, canonical JSON, endorsement embedded): chained, verifiable;
* the table is grown to each size of ``--sizes`` by **bulk load** (PostgreSQL COPY of the signed
  certificates and their facts, as the hub stores them, without going through HTTP: loading a
  million through HTTP would take most of an hour on 2 cores); they are queued for the transparency
  log as ingest queues them, and appended by the hub's own code (``hub.log.catch_up``, timed);
* at each size it measures, through HTTP against ``station-hub serve`` processes (rate limits off):
  ingest of ``--http-sample`` new certificates by ``--concurrency`` stations in parallel (each a
  thread with its own keep-alive connection (``http.client``: lighter than httpx), its chain in
  order), one certificate per request (``PUT``) and then ``--batch`` per request (``POST
  /api/v1/certificates:batch``, what ``station sync`` sends), alternating ``--rounds`` times, each
  rate with the load average when it was taken, with ONE hub process, then the same
  with TWO hub processes on the same database; p50/p95 of lookups by id (public), serial, asset
  number and station (token), and of the ``/verify/{id}`` page, on a fresh hub process (every lookup
  verifies the signature again: no verdict is in its memory); and the lookup by station of each
  station that just uploaded, on the process that ingested them (whose verdicts it kept) and on a
  fresh one; bytes per certificate
  (``pg_total_relation_size``); resident memory of the hub processes.

Client, hub(s) and PostgreSQL share the machine (the development VM has 2 cores and is shared with
other jobs): compare figures of one run, and say so when quoting them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat  # noqa: E402

from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign  # noqa: E402
from hub.service import Hub  # noqa: E402
from hub.testing import create_database, free_port, postgres_cluster, wait_port  # noqa: E402
from tests.test_sync_support import enrolled, make_kit, make_org  # noqa: E402

_COLUMNS = (
    "certificate_id, station_pk, station_kid, station_name, sequence, previous, digest, body_sha256, "
    "kind, success, outcome, level_achieved, serial, wwn, model, manufacturer, asset_number, issued_at, "
    "trust, body, received_at"
)


@dataclass
class Station:
    """What a generator process needs to sign as one station, and its chain state."""

    pk: int
    station_id: str
    kid: str
    private_raw: bytes
    template: dict[str, Any]
    endorsement: dict[str, Any]
    token: str
    org: str
    sequence: int = 0
    previous: str | None = None
    serials: list[str] = field(default_factory=list)


def generate(args: tuple[Station, int]) -> tuple[int, list[tuple[Any, ...]], int, str | None]:
    """Sign ``count`` chained certificates of a station: (pk, rows for COPY, last sequence, last hash)."""
    st, count = args
    key = Ed25519PrivateKey.from_private_bytes(st.private_raw)
    doc = json.loads(json.dumps(st.template))
    seq, prev = st.sequence, st.previous
    now = datetime.now(UTC)
    rows = []
    media = doc["media"]
    for _ in range(count):
        seq += 1
        cid = str(uuid.uuid4())
        doc["certificate_id"] = cid
        doc["station"]["sequence"], doc["station"]["previous"] = seq, prev
        media["serial"] = f"{st.station_id}-SN-{seq:08d}"
        media["asset_number"] = f"{st.station_id}-PC-{seq:08d}"
        env = sign(doc, key, TYP_CERTIFICATE, {"endorsement": st.endorsement})
        body = envelope_bytes(env)
        rows.append(
            (
                cid, st.pk, st.kid, st.station_id, seq, prev, env.digest, hashlib.sha256(body).hexdigest(),
                doc["kind"], True, doc["result"]["outcome"], doc["sanitization"]["level_achieved"],
                media["serial"], media["wwn"], media["model"], media["manufacturer"], media["asset_number"],
                doc["issued_at"], f"station key {st.kid[:16]} endorsed by {st.org}", body, now,
            )
        )  # fmt: skip
        prev = env.digest
    return st.pk, rows, seq, prev


def setup(hub: Hub, root: Path, n: int) -> list[Station]:
    stations = []
    for o in range(2):
        org = make_org(root / f"org{o}", f"Bench Org {o}")
        hub.add_organisation(f"Bench Org {o}", org.pem)
        for i in range(o, n, 2):
            kit = enrolled(hub, org, make_kit(root / f"org{o}", org, f"bench-{i:03d}"))
            info = hub.authenticate(f"Bearer {kit.token}")
            raw = kit.key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            template = kit.certificate().to_dict()
            stations.append(
                Station(info.pk, kit.station_id, kit.key.kid, raw, template, json.loads(kit.endorsement), kit.token, org.key.name)
            )  # fmt: skip
    return stations


def bulk_load(pool: Any, url: str, stations: list[Station], count: int, chunk: int = 1000) -> float:
    """Grow the table by ``count`` certificates spread over the stations; returns certificates/s."""
    by_pk = {s.pk: s for s in stations}
    per = count // len(stations)
    t = time.perf_counter()
    with psycopg.connect(url) as conn:
        left = {s.pk: per for s in stations}
        while any(left.values()):
            tasks = [(by_pk[pk], min(chunk, n)) for pk, n in left.items() if n]
            queued: list[tuple[str, str]] = []
            with conn.cursor() as cur, cur.copy(f"COPY certificates ({_COLUMNS}) FROM STDIN") as cp:
                for pk, rows, seq, prev in pool.imap_unordered(generate, tasks):
                    for row in rows:
                        cp.write_row(row)
                        queued.append((row[0], row[6]))
                    by_pk[pk].sequence, by_pk[pk].previous = seq, prev
                    left[pk] -= len(rows)
            # queued for the transparency log, as ingest queues them (appended by catch_up_log)
            with conn.cursor() as cur, cur.copy("COPY log_queue (certificate_id, digest) FROM STDIN") as cp:
                for item in queued:
                    cp.write_row(item)
            conn.commit()
    return per * len(stations) / (time.perf_counter() - t)


def catch_up_log(db: str) -> float:
    """Append what the bulk load queued to the transparency log; returns leaves per second."""
    hub = Hub(db)
    t = time.perf_counter()
    n = hub.log.catch_up()
    dt = time.perf_counter() - t
    hub.engine.dispose()
    return n / dt if n else 0.0


@contextmanager
def hub_processes(url: str, n: int, log: Path) -> Iterator[tuple[list[str], list[int]]]:
    procs, urls = [], []
    with log.open("ab") as out:
        for _ in range(n):
            port = free_port()
            argv = [sys.executable, "-m", "hub", "serve", "--db", url, "--port", str(port)]
            argv += ["--public-rate", "0", "--station-rate", "0"]
            procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for u in urls:
                wait_port(int(u.rsplit(":", 1)[1]), timeout=60)
            yield urls, [p.pid for p in procs]
        finally:
            for p in procs:
                p.terminate()
                p.wait(30)


def _single(
    conn: http.client.HTTPConnection, headers: dict[str, str], rows: list[Any], errors: list[str]
) -> None:
    for row in rows:
        conn.request("PUT", f"/api/v1/certificates/{row[0]}", body=row[19], headers=headers)
        r = conn.getresponse()
        text = r.read()
        if r.status != 201:
            errors.append(f"{r.status} {text[:200]!r}")


def _batches(
    conn: http.client.HTTPConnection, headers: dict[str, str], rows: list[Any], errors: list[str], size: int
) -> None:
    """``POST /api/v1/certificates:batch``, ``size`` certificates a request, as ``station sync`` sends."""
    for start in range(0, len(rows), size):
        items = [
            {"certificate_id": row[0], "body": base64.b64encode(row[19]).decode()}
            for row in rows[start : start + size]
        ]
        conn.request(
            "POST", "/api/v1/certificates:batch", body=json.dumps({"certificates": items}), headers=headers
        )
        r = conn.getresponse()
        text = r.read()
        if r.status != 200:
            errors.append(f"{r.status} {text[:200]!r}")
            continue
        errors += [
            f"item {x['http_status']} {x.get('error')}"
            for x in json.loads(text)["results"]
            if x["http_status"] != 201
        ]


def http_ingest(
    pool: Any, urls: list[str], stations: list[Station], total: int, batch: int = 0, probe: Any = None
) -> float:
    """``len(stations)`` stations upload ``total`` new certificates in parallel, one per request or
    (``batch``) that many per request; returns certificates/s.  ``probe()`` is called when the clock
    starts and when it stops."""
    per = total // len(stations)
    work = {pk: rows for pk, rows, _, _ in pool.imap_unordered(generate, [(s, per) for s in stations])}
    for s in stations:
        last = work[s.pk][-1]
        s.sequence, s.previous = last[4], last[6]
    errors: list[str] = []

    def upload(i: int, st: Station) -> None:
        # http.client, not httpx: a lighter client leaves more of the shared cores to the hub.
        host, port = urls[i % len(urls)].removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {st.token}", "Content-Type": "application/json"}
        if batch:
            _batches(conn, headers, work[st.pk], errors, batch)
        else:
            _single(conn, headers, work[st.pk], errors)
        conn.close()

    threads = [threading.Thread(target=upload, args=(i, s)) for i, s in enumerate(stations)]
    if probe:
        probe()
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.perf_counter() - t
    if probe:
        probe()
    if errors:
        raise SystemExit(f"ingest errors ({len(errors)}): {errors[:3]}")
    return per * len(stations) / dt


def postgres_pids(db: str) -> list[int]:
    """The PostgreSQL server of ``db`` (its postmaster, found by port) and its backends."""
    port = db.rsplit(":", 1)[1].split("/", 1)[0]
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-p" in cmd and cmd[cmd.index("-p") + 1] == port:
            return [proc.pid]
    return []


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU time of these processes and their children (alive now)."""
    total = 0.0
    for pid in roots:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def timed_ingest(
    pool: Any, urls: list[str], stations: list[Station], total: int, batch: int, pids: list[int], db: str
) -> tuple[int, float, float, dict[str, float]]:
    """:func:`http_ingest` with where the CPU went, per certificate (ms): hub, PostgreSQL, this client
    (the bench's own process: HTTP and JSON; certificates are signed before the clock starts).
    PostgreSQL backends that ended during the run are not counted (the pools keep theirs)."""
    pg = postgres_pids(db)
    me = psutil.Process()
    marks: list[tuple[float, float, float]] = []
    probe = lambda: marks.append((cpu_seconds(pids), cpu_seconds(pg), sum(me.cpu_times()[:2])))  # noqa: E731
    rate = http_ingest(pool, urls, stations, total, batch, probe)
    before, after = marks
    n = total // len(stations) * len(stations)
    cpu = {
        k: (a - b) * 1000 / n for k, a, b in zip(("hub", "postgres", "client"), after, before, strict=True)
    }
    return batch, rate, os.getloadavg()[0], cpu


def percentiles(samples: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(samples, n=20, method="inclusive")
    return statistics.median(samples) * 1000, q[18] * 1000


def lookups(url: str, db: str, stations: list[Station], n: int) -> dict[str, tuple[float, float]]:
    with psycopg.connect(db) as conn:
        sample = conn.execute(
            "SELECT certificate_id, serial, asset_number, station_name, station_pk FROM certificates "
            "TABLESAMPLE SYSTEM (1) LIMIT %s",
            (n,),
        ).fetchall()
        if len(sample) < n:
            sample = conn.execute(
                "SELECT certificate_id, serial, asset_number, station_name, station_pk FROM certificates "
                "ORDER BY random() LIMIT %s",
                (n,),
            ).fetchall()
    token = {s.pk: s.token for s in stations}
    out: dict[str, list[float]] = {k: [] for k in ("id", "serial", "asset_number", "station", "verify_page")}
    random.shuffle(sample)
    with httpx.Client(base_url=url, timeout=60) as c:
        for cid, serial, asset, station, pk in sample:
            auth = {"Authorization": f"Bearer {token[pk]}"}
            calls = {
                "id": lambda cid=cid: c.get(f"/api/v1/certificates/{cid}"),
                "serial": lambda s=serial, a=auth: c.get(
                    "/api/v1/certificates", params={"serial": s}, headers=a
                ),
                "asset_number": lambda s=asset, a=auth: c.get(
                    "/api/v1/certificates", params={"asset_number": s}, headers=a
                ),
                "station": lambda s=station, a=auth: c.get(
                    "/api/v1/certificates", params={"station": s, "limit": "20"}, headers=a
                ),
                "verify_page": lambda cid=cid: c.get(f"/verify/{cid}"),
            }
            for name, call in calls.items():
                t = time.perf_counter()
                r = call()
                out[name].append(time.perf_counter() - t)
                assert r.status_code == 200, (name, r.status_code, r.text[:200])
    return {k: percentiles(v) for k, v in out.items()}


def recent_station_lookups(
    ingested: str, fresh: str, movers: list[Station]
) -> dict[str, tuple[float, float]]:
    """Lookup by station (its 20 newest) of each station that just uploaded, on the hub process that
    ingested them (it kept the verdicts it reached then) and on a fresh process (it verifies them),
    once each, which one goes first alternating (the first read of fresh rows costs PostgreSQL more)."""
    samples: dict[str, list[float]] = {"ingesting process": [], "fresh process": []}
    with httpx.Client(base_url=ingested, timeout=60) as a, httpx.Client(base_url=fresh, timeout=60) as b:
        for i, st in enumerate(movers):
            order = [("ingesting process", a), ("fresh process", b)]
            for name, c in order if i % 2 else order[::-1]:
                t = time.perf_counter()
                r = c.get(
                    "/api/v1/certificates",
                    params={"station": st.station_id, "limit": "20"},
                    headers={"Authorization": f"Bearer {st.token}"},
                )
                samples[name].append(time.perf_counter() - t)
                assert r.status_code == 200 and len(r.json()["certificates"]) == 20, r.text[:200]
    return {k: percentiles(v) for k, v in samples.items()}


def measure(
    args: argparse.Namespace, pool: Any, db: str, stations: list[Station], log: Path
) -> dict[str, Any]:
    res: dict[str, Any] = {"ingest_1_hub": [], "ingest_2_hubs": []}
    movers = stations[: args.concurrency]
    modes = [0, args.batch] if args.batch else [0]
    with hub_processes(db, 1, log) as (urls, pids):
        httpx.get(f"{urls[0]}/healthz")
        for _ in range(args.rounds):  # single and batch alternate: A/B under the same load
            for mode in modes:
                res["ingest_1_hub"].append(timed_ingest(pool, urls, movers, args.http_sample, mode, pids, db))
        res["hub_rss_mb"] = [psutil.Process(p).memory_info().rss / 2**20 for p in pids]
        with hub_processes(db, 1, log) as (fresh, _):
            res["recent_station"] = recent_station_lookups(urls[0], fresh[0], movers)
    with hub_processes(db, 1, log) as (urls, pids):  # a fresh process: no verdict in memory
        res["lookups"] = lookups(urls[0], db, stations, args.lookups)
    with hub_processes(db, 2, log) as (urls, pids):
        for _ in range(args.rounds):
            for mode in modes:
                res["ingest_2_hubs"].append(
                    timed_ingest(pool, urls, movers, args.http_sample, mode, pids, db)
                )
        res["hub_rss_mb_2"] = [psutil.Process(p).memory_info().rss / 2**20 for p in pids]
    with psycopg.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM certificates").fetchone()[0]  # type: ignore[index]
        size = conn.execute("SELECT pg_total_relation_size('certificates')").fetchone()[0]  # type: ignore[index]
        broken = conn.execute(
            "SELECT count(*) FROM certificates c JOIN certificates p ON p.station_kid = c.station_kid "
            "AND p.sequence = c.sequence - 1 WHERE c.previous IS DISTINCT FROM p.digest"
        ).fetchone()[0]  # type: ignore[index]
        log_size = conn.execute("SELECT tree_size FROM log_state").fetchone()[0]  # type: ignore[index]
        log_bytes = conn.execute(
            "SELECT pg_total_relation_size('log_nodes') + pg_total_relation_size('log_entries')"
        ).fetchone()[0]  # type: ignore[index]
    res.update(count=count, bytes_per_certificate=size / count, broken_links=broken, load=os.getloadavg())
    res.update(log_size=log_size, log_bytes_per_leaf=log_bytes / max(1, log_size))
    return res


def report(size: int, res: dict[str, Any], bulk_rate: float) -> None:
    load = ", ".join(f"{x:.1f}" for x in res["load"])
    print(f"\n== {res['count']:,} certificates (bulk load {bulk_rate:,.0f}/s; load average {load}) ==")
    for key, what in (("ingest_1_hub", "1 hub process "), ("ingest_2_hubs", "2 hub processes")):
        for mode, rate, load1, cpu in res[key]:
            how = f"batches of {mode}" if mode else "one per request"
            ms = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
            print(
                f"ingest, {what}, {how:17s}: {rate:,.0f} certificates/s (load {load1:.1f}; CPU ms each: {ms})"
            )
    for name, (p50, p95) in res["lookups"].items():
        print(f"lookup {name:13s}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    for name, (p50, p95) in res["recent_station"].items():
        print(f"lookup station just uploaded, {name:17s}: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
    print(f"bytes per certificate (table + indexes + TOAST): {res['bytes_per_certificate']:,.0f}")
    print(
        f"transparency log: {res['log_size']:,} leaves (every certificate: {res['log_size'] == res['count']}), "
        f"{res['log_bytes_per_leaf']:,.0f} bytes per leaf; bulk append {res['log_append_rate']:,.0f} leaves/s"
    )
    rss1 = ", ".join(f"{x:.0f}" for x in res["hub_rss_mb"])
    rss2 = ", ".join(f"{x:.0f}" for x in res["hub_rss_mb_2"])
    print(f"hub RSS MiB: {rss1} (1 process), {rss2} (2 processes); broken chain links: {res['broken_links']}")
    sys.stdout.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=128)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--http-sample", type=int, default=4000)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument(
        "--batch", type=int, default=50, help="certificates per batch upload (0: single uploads only)"
    )
    ap.add_argument("--rounds", type=int, default=1, help="single / batch ingest alternations per hub setup")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    pg = {"shared_buffers": "1GB", "max_connections": "200", "max_wal_size": "8GB"}
    results = []
    with tempfile.TemporaryDirectory() as tmp, postgres_cluster(pg) as admin:
        db = create_database(admin, "bench")
        hub = Hub(db)
        stations = setup(hub, Path(tmp), args.stations)
        hub.engine.dispose()
        log = Path(tmp) / "hub.log"
        have = 0
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            for size in sizes:
                runs = 2 * args.rounds * (2 if args.batch else 1)  # each measure() adds that many samples
                target = size - have - runs * args.http_sample
                rate = bulk_load(pool, db, stations, max(0, target)) if target > 0 else 0.0
                log_rate = catch_up_log(db)
                with psycopg.connect(db, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE certificates, log_nodes, log_entries")
                res = measure(args, pool, db, stations, log)
                have = res["count"]
                res["log_append_rate"] = log_rate
                report(size, res, rate)
                results.append({"size": size, "bulk_rate": rate, **res})
        if "Traceback" in log.read_text(errors="replace"):
            print("the hub logged a traceback:\n" + log.read_text()[-3000:])
            return 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
