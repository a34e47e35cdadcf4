"""Benchmark: how many signed certificates `station verify` checks per second, JSON and PDF apart.

Issues N certificates with one endorsed station key (signing only), then verifies the directory with
a cold verifier (first pass) and a warm one, with and without --chain: the JSON figure.  Then it
renders M PDF certificates and verifies them (embedded record, page text, QR code, metadata): the
PDF figure, much lower, since reading a page back costs far more than checking a signature.
Goal (issues 3 and 12): at least 2,000 JSON verifications per second on one core.

    python3 bench/certs_bench.py [--count 3000] [--pdf-count 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certs.build import build_certificate
from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign
from certs.keys import endorse, init_org_key, init_station_key
from certs.model import Station
from certs.pdf import render_pdf
from certs.settings import CertSettings
from certs.trust import TrustStore
from certs.verify import Verifier
from tests.fixtures.certs import records

SETTINGS = CertSettings(technician="bench", organisation="Bench", verification_url="https://example.org/v")


def make_certs(root: Path, count: int, pdfs: int) -> TrustStore:
    key = init_station_key(root / "keys", "bench-1")
    org = init_org_key(root / "org", "Bench")
    endorsement = endorse(org, "bench-1", key.public).to_json()
    (root / "certs").mkdir()
    (root / "pdfs").mkdir()
    previous = None
    record = records.verified()
    for n in range(1, count + 1):
        station = Station(id="bench-1", kid=key.kid, sequence=n, previous=previous)
        cert = build_certificate(record, settings=SETTINGS, station=station)
        env = sign(cert.to_dict(), key.private, TYP_CERTIFICATE, endorsement=endorsement)
        signed = envelope_bytes(env)
        (root / "certs" / f"{cert.certificate_id}.json").write_bytes(signed)
        if n <= pdfs:
            pdf = render_pdf(cert, env, signed, url=SETTINGS.verification_url)
            (root / "pdfs" / f"{cert.certificate_id}.pdf").write_bytes(pdf)
        previous = env.digest
    store = TrustStore()
    store.add_pem((root / "org" / "org.pub.pem").read_bytes(), "bench organisation")
    return store


def timed(verifier: Verifier, folder: Path, count: int, label: str, *, chain: bool = False) -> float:
    """Verify ``folder``; print the rate by wall clock and by this process's CPU time.

    On a shared machine the wall-clock rate drops with the other jobs' load; the CPU-time rate is what
    one free core does.  Returns the CPU-time rate.
    """
    t, c = time.perf_counter(), time.process_time()
    verdicts = verifier.verify_paths([folder], chain=chain)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    assert len(verdicts) == count and all(v.ok for v in verdicts), "benchmark certificates must verify"
    print(f"{label:24s} {count} in {dt:.2f} s: {count / dt:,.0f}/s wall, {count / dc:,.0f}/s of CPU time")
    return count / dc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--pdf-count", type=int, default=100)
    args = ap.parse_args()
    pdfs = min(args.pdf_count, args.count)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        trust = make_certs(root, args.count, pdfs)
        t1 = time.perf_counter()
        print(f"issued {args.count} signed certificates ({pdfs} with a PDF) in {t1 - t0:.1f} s")
        verifier = Verifier(trust)
        timed(verifier, root / "certs", args.count, "JSON verify (cold)")
        rate = timed(verifier, root / "certs", args.count, "JSON verify (warm)")
        timed(verifier, root / "certs", args.count, "JSON verify --chain", chain=True)
        timed(verifier, root / "pdfs", pdfs, "PDF verify (page, QR)")
        if rate < 2000:
            print(f"WARNING: {rate:,.0f} JSON verifications per CPU second is below the 2,000/s goal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
