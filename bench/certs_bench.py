"""Benchmark: how many signed certificates `station verify` checks per second.

Issues N certificates with one station key (signing only; PDFs are not part of verification speed),
then verifies the directory with a cold verifier (first pass) and a warm one, with and without
--chain.  Goal (issue 3): thousands of certificates per second on one core.

    python3 bench/certs_bench.py [--count 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certs.build import build_certificate
from certs.fsio import atomic_write
from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign
from certs.keys import init_station_key, public_pem
from certs.model import Station
from certs.settings import CertSettings
from certs.trust import TrustStore
from certs.verify import Verifier
from tests.fixtures.certs import records


def make_certs(root: Path, count: int) -> TrustStore:
    key = init_station_key(root / "keys", "bench-1")
    certs = root / "certs"
    certs.mkdir()
    previous = None
    record = records.verified()
    for n in range(1, count + 1):
        station = Station(id="bench-1", kid=key.kid, sequence=n, previous=previous)
        cert = build_certificate(record, settings=CertSettings(technician="bench"), station=station)
        env = sign(cert.to_dict(), key.private, TYP_CERTIFICATE)
        (certs / f"{cert.certificate_id}.json").write_bytes(envelope_bytes(env))
        previous = env.digest
    atomic_write(root / "station.pem", public_pem(key.public).encode())
    store = TrustStore()
    store.add_pem((root / "station.pem").read_bytes(), "bench")
    return store


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=3000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        trust = make_certs(root, args.count)
        t1 = time.perf_counter()
        print(f"issued (signed, no PDF) {args.count} certificates: {args.count / (t1 - t0):,.0f}/s")
        verifier = Verifier(trust)
        for label, chain in (
            ("verify (cold caches)", False),
            ("verify (warm)", False),
            ("verify --chain", True),
        ):
            t = time.perf_counter()
            verdicts = verifier.verify_paths([root / "certs"], chain=chain)
            dt = time.perf_counter() - t
            assert len(verdicts) == args.count and all(v.ok for v in verdicts), (
                "benchmark certificates must verify"
            )
            print(f"{label:22s} {args.count} certificates in {dt:.2f} s: {args.count / dt:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
