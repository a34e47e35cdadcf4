"""station.certify: the certificate is a function of the finished journal, issued once per job."""

from __future__ import annotations

import json
from pathlib import Path

from certs.trust import TrustStore
from certs.verify import Verifier
from erase.journal import Journal
from erase.record import VerificationRecord
from station.certify import certify_job, ensure_station_key
from station.options import WorkerOptions
from tests.test_journal import SIZE, dead_worker, full_pass, plan

VERIFIED = VerificationRecord(
    pass_index=1,
    mode="full",
    bytes_total=SIZE,
    bytes_checked=SIZE,
    passed=True,
    started_at="2026-11-28T12:00:01.000Z",
    finished_at="2026-11-28T12:00:02.000Z",
)


def finished_job(root: Path) -> Path:
    with Journal.create(root / "jobs", plan()) as j:
        j.append("worker-started", **dead_worker())
        full_pass(j, 0)
        full_pass(j, 1)
        j.append("verify-started", **{"pass": 1}, mode="full", seed=None, planned=SIZE)
        j.append("verify-finished", **{"pass": 1}, verification=VERIFIED.to_dict())
        j.append("finished")
        return j.job_dir


def test_certificate_issued_once_even_after_a_crash_before_the_index(tmp_path: Path) -> None:
    job = finished_job(tmp_path)
    opts = WorkerOptions(cert_dir=str(tmp_path / "certs"), key_dir=str(tmp_path / "keys"))
    ensure_station_key(tmp_path / "keys")
    first = certify_job(job, opts)
    assert [p.suffix for p in first] == [".json", ".pdf"] and all(p.exists() for p in first)
    assert certify_job(job, opts) == first  # idempotent through certificate.json
    (job / "certificate.json").unlink()  # as if the worker died right after signing
    assert certify_job(job, opts) == first
    assert len(list((tmp_path / "certs").glob("*.json"))) == 1
    store = TrustStore()
    store.add_pem((tmp_path / "keys" / "station.pub.pem").read_bytes(), "station")
    verdict = Verifier(store).verify_file(first[0])
    assert verdict.ok
    assert json.loads((job / "certificate.json").read_text())["paths"] == [str(p) for p in first]


def test_a_resumed_job_gets_a_new_certificate_for_its_new_record(tmp_path: Path) -> None:
    """Found by review: a job cancelled (failure report), then resumed to a verified end, kept the old report."""
    opts = WorkerOptions(cert_dir=str(tmp_path / "certs"), key_dir=str(tmp_path / "keys"))
    ensure_station_key(tmp_path / "keys")
    with Journal.create(tmp_path / "jobs", plan()) as j:
        j.append("worker-started", **dead_worker())
        full_pass(j, 0)
        j.append("cancelled", reason="stopped by the operator")
        job = j.job_dir
    (report,) = [p for p in certify_job(job, opts) if p.suffix == ".json"]
    with Journal(job) as j:
        j.append("worker-started", **dead_worker())
        full_pass(j, 1)
        j.append("verify-started", **{"pass": 1}, mode="full", seed=None, planned=SIZE)
        j.append("verify-finished", **{"pass": 1}, verification=VERIFIED.to_dict())
        j.append("finished")
    (cert,) = [p for p in certify_job(job, opts) if p.suffix == ".json"]
    assert cert != report and report.exists()  # the old report stays in the chain as history
    store = TrustStore()
    store.add_pem((tmp_path / "keys" / "station.pub.pem").read_bytes(), "station")
    verifier = Verifier(store)
    assert verifier.verify_file(cert).ok
    assert not verifier.verify_file(report).ok and verifier.verify_file(report).authentic
    assert certify_job(job, opts)[0] == cert  # and it is stable from then on
