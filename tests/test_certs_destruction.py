"""Destruction records: signed, chained with the certificates, verified, and never an erasure."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from certs.canonical import b64url_encode, canonical_json
from certs.destruction import SCHEMA, DestructionRecord
from certs.errors import InvalidCertificate
from certs.issue import IssuedDestruction, issue_destruction
from certs.jws import TYP_DESTRUCTION, parse_envelope
from certs.pdf import extract_signed, pdf_text
from erase.record import JobRecord
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS, Station, make_station, payload_of, resign


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path)


def destroy(station: Station, record: JobRecord, **kw: Any) -> IssuedDestruction:
    kw.setdefault("method", "shred")
    kw.setdefault("performed_by", "Camille Martin")
    kw.setdefault("settings", SETTINGS)
    return issue_destruction(record, key_dir=station.key_dir, cert_dir=station.cert_dir, **kw)


def test_a_destroyed_drive_is_signed_linked_and_verifies_as_a_destruction(
    station: Station, tmp_path: Path
) -> None:
    failed = records.failed_bad_ranges()
    report = station.issue(failed)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not really a jpeg")
    d = destroy(
        station,
        failed,
        witness="Dominique Durand",
        photo=str(photo),
        report=(report.certificate_id, report.digest),
    )
    env = parse_envelope(d.json_path.read_bytes())
    assert env.typ == TYP_DESTRUCTION and "endorsement" in env.header
    payload = payload_of(d.json_path)
    assert payload["schema"] == SCHEMA
    assert payload["failed_job"] == {
        "job_id": failed.plan.job_id,
        "outcome": "failed",
        "reasons": list(failed.reasons),
        "report_id": report.certificate_id,
        "report_sha256": report.digest,
    }
    assert payload["destruction"]["photo"]["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert payload["station"]["sequence"] == report.sequence + 1  # numbered in the same chain
    verdicts = station.verifier().verify_paths([station.cert_dir], chain=True)
    by_kind = {v.to_json()["kind"]: v for v in verdicts if v.path.endswith(".json")}
    destruction = by_kind["destruction"]
    assert destruction.valid and not destruction.ok  # never an erasure
    assert destruction.problems == [] and destruction.destruction is not None
    assert "PHYSICALLY DESTROYED (shred, by Camille Martin" in destruction.summary()
    assert "erased" not in destruction.summary().replace("never erased", "")
    pdf_verdict = next(v for v in verdicts if v.path == str(d.pdf_path))
    assert pdf_verdict.valid and pdf_verdict.problems == [], pdf_verdict.problems
    assert extract_signed(d.pdf_path.read_bytes()) == d.json_path.read_bytes()


def test_the_chain_sees_a_missing_destruction_record(station: Station) -> None:
    failed = records.failed_bad_ranges()
    station.issue(failed)
    d = destroy(station, failed)
    station.issue(records.verified())
    d.json_path.unlink()
    d.pdf_path.unlink()
    verdicts = station.verifier().verify_paths([station.cert_dir], chain=True)
    assert any(r == "chain_gap" for v in verdicts for r, _ in v.problems)


def test_an_erased_drive_gets_no_destruction_record(station: Station) -> None:
    with pytest.raises(InvalidCertificate, match="could not be sanitized"):
        destroy(station, records.verified())


def test_a_tampered_destruction_record_does_not_verify(station: Station) -> None:
    failed = records.failed_bad_ranges()
    d = destroy(station, failed)
    obj = json.loads(d.json_path.read_bytes())
    payload = payload_of(d.json_path)
    payload["destruction"]["performed_by"] = "Someone Else"
    obj["payload"] = b64url_encode(canonical_json(payload))
    d.json_path.write_text(json.dumps(obj))
    v = station.verifier().verify_file(d.json_path)
    assert not v.valid and v.reason == "bad_signature"
    # re-signed by the station with a bad field: the schema says no
    payload["destruction"]["method"] = "burn"
    body = canonical_json(payload)
    d.json_path.write_text(json.dumps(resign(obj, body, station.key_dir)))
    v = station.verifier().verify_file(d.json_path)
    assert not v.valid and v.reason == "schema_error"


@pytest.mark.parametrize(
    "lang, words",
    [
        ("en", ("Record of physical destruction", "PHYSICALLY DESTROYED", "Destroyed by", "shredded")),
        (
            "fr",
            (
                "Procès-verbal de destruction physique",
                "DÉTRUIT PHYSIQUEMENT",
                "Détruit par",
                "broyé",
                "échoué",
            ),
        ),
    ],
)
def test_the_pdf_says_destroyed_in_its_language(station: Station, lang: str, words: tuple[str, ...]) -> None:
    failed = records.failed_bad_ranges()
    report = station.issue(failed, lang=lang)
    d = destroy(station, failed, lang=lang, report=(report.certificate_id, report.digest))
    text = re.sub(r"\s+", " ", pdf_text(d.pdf_path.read_bytes()))
    for w in words:
        assert w.lower() in text.lower(), w
    assert report.certificate_id in text
    v = station.verifier().verify_file(d.pdf_path)
    assert v.valid and not v.ok, v.problems


def test_from_dict_is_strict(station: Station) -> None:
    d = destroy(station, records.failed_bad_ranges())
    payload = payload_of(d.json_path)
    assert DestructionRecord.from_dict(payload).to_dict() == payload
    payload["extra"] = 1
    with pytest.raises(Exception, match="unknown field"):
        DestructionRecord.from_dict(payload)


def test_station_verify_says_destroyed_and_counts_it_apart(
    station: Station, capsys: pytest.CaptureFixture[str]
) -> None:
    from certs import cli

    failed = records.failed_bad_ranges()
    d = destroy(station, failed)
    code = cli.main(
        ["verify", "--chain", "--trust", str(station.trust_dir), str(d.json_path), str(d.pdf_path)]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert [line.split()[0] for line in out.splitlines()[:2]] == ["DESTROYED", "DESTROYED"]
    assert "OK    " not in out
    assert "0/2 valid erasure certificate(s), 2 valid destruction record(s)" in out
    cli.main(["verify", "--json", "--trust", str(station.trust_dir), str(d.json_path)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["valid"] == 0 and doc["destructions"] == 1
    assert doc["results"][0]["kind"] == "destruction" and doc["results"][0]["ok"] is False
