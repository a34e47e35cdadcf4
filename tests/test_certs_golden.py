"""Certificates issued by format tabula.certificate/1 must keep verifying (committed fixtures)."""

from __future__ import annotations

from pathlib import Path

from certs.trust import TrustStore
from certs.verify import Verifier

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "certs" / "golden"


def verifier() -> Verifier:
    store = TrustStore()
    store.add_pem((GOLDEN / "org.pem").read_bytes(), "golden org")
    return Verifier(store)


def test_committed_certificate_and_pdf_still_verify() -> None:
    verdicts = verifier().verify_paths([GOLDEN / "verified.json", GOLDEN / "verified.pdf"], chain=True)
    assert [v.ok for v in verdicts] == [True, True], [v.problems for v in verdicts]
    cert = verdicts[0].certificate
    assert cert is not None and cert.station.id == "fixture-station" and cert.station.sequence == 1
    assert "endorsed by Atelier Réemploi" in verdicts[0].trust


def test_committed_failure_report_stays_a_failure() -> None:
    v = verifier().verify_file(GOLDEN / "failed.json")
    assert v.authentic and not v.ok and v.reason == "failure_report"
    assert v.certificate is not None and v.certificate.result.outcome == "failed"


def test_committed_chain_is_whole_and_the_failure_cannot_be_dropped() -> None:
    all_files = verifier().verify_paths([GOLDEN], chain=True)
    assert sorted(v.reason for v in all_files) == ["failure_report", "ok", "ok"]
    # an auditor given only the failure report sees that #1 is missing
    only_failure = verifier().verify_paths([GOLDEN / "failed.json"], chain=True)
    assert [r for r, _ in only_failure[0].problems] == ["failure_report", "chain_gap"]


def test_without_the_organisation_key_nothing_is_trusted() -> None:
    v = Verifier(TrustStore()).verify_file(GOLDEN / "verified.json")
    assert v.reason == "unendorsed_key"  # the certificate carries an endorsement by an untrusted key
