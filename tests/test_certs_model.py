"""Certificate model: built from job records, validated on construction, strictly parsed."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from certs.build import build_certificate, utc
from certs.canonical import CanonicalError, canonical_json, parse_json
from certs.errors import InvalidCertificate, MalformedEnvelope, SchemaError, SettingsError
from certs.model import (
    Certificate,
    HiddenArea,
    Sanitization,
    Station,
    Step,
    Tool,
)
from certs.settings import CertSettings
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS

KID = "ab" * 32
STATION = Station(id="bench-1", kid=KID, sequence=1, previous=None)


def build(record: Any, **kw: Any) -> Certificate:
    return build_certificate(record, settings=SETTINGS, station=STATION, **kw)


def test_verified_job_gives_a_certificate_with_the_nist_fields() -> None:
    cert = build(records.verified())
    assert cert.kind == "certificate" and cert.success
    assert cert.result.outcome == "verified" and cert.result.reasons == ()
    assert cert.person.name == "Camille Martin" and cert.person.organisation == "Atelier Réemploi"
    m = cert.media
    assert (m.manufacturer, m.model, m.serial, m.wwn) == (
        "Western Digital",
        "WDC WD5000AAKX-08U6AA0",
        "WD-WCC4N1234567",
        "5000c500a1b2c3d4",
    )
    assert m.asset_number == "PC-2024-0173" and m.source == "Mairie de Villeurbanne"
    assert m.accessible_bytes == records.SIZE and m.native_bytes is None
    assert m.hidden_before.status == "not_checked" and m.hidden_after.status == "not_checked"
    s = cert.sanitization
    assert (s.method_type, s.level_requested, s.level_achieved) == ("Clear", "clear", "clear")
    assert [st.kind for st in s.steps] == ["overwrite"] * 3
    assert all(st.level_achieved == "clear" and st.bytes_written == records.SIZE for st in s.steps)
    assert s.steps[2].pattern is not None and s.steps[2].pattern.seed == records.SEED
    assert cert.verification.result == "passed" and cert.verification.checks[0].coverage_ppm == 1_000_000
    assert cert.destination.kind == "external_reuse"
    assert cert.issued_at.endswith("Z") and cert.job.started_at == "2025-03-01T10:00:00Z"


def test_sampled_verification_records_seed_and_coverage() -> None:
    cert = build(records.verified(mode="sample"))
    check = cert.verification.checks[0]
    assert (
        check.mode == "sample"
        and check.seed == records.SEED
        and check.coverage_ppm == (records.SIZE // 10) * 1_000_000 // records.SIZE
    )
    assert "sampled" in cert.verification.method and "10.00 %" in cert.verification.method


@pytest.mark.parametrize("name", sorted(records.ALL_FAILURES))
def test_every_unsuccessful_job_gives_a_failure_report(name: str) -> None:
    record = records.ALL_FAILURES[name]()
    cert = build(record)
    assert cert.kind == "failure_report" and not cert.success
    assert cert.sanitization.level_achieved == "none" and cert.sanitization.level_note
    assert cert.result.reasons
    assert all(s.level_achieved == "none" for s in cert.sanitization.steps)


def test_failed_job_bad_ranges_are_listed() -> None:
    cert = build(records.failed_bad_ranges())
    assert len(cert.errors.bad_ranges) == 2 and cert.errors.bad_bytes == 4096 + 8192
    assert cert.sanitization.steps[0].note == "2 unwritable range(s)"


def test_interrupted_job_has_an_incomplete_and_a_never_started_step() -> None:
    cert = build(records.interrupted())
    steps = cert.sanitization.steps
    assert steps[1].bytes_written == 20 * records.MiB and not steps[1].completed
    assert steps[2].note == "pass never started" and steps[2].bytes_written == 0
    assert cert.verification.result == "incomplete"


@pytest.mark.parametrize("name", sorted(records.ALL_FAILURES))
def test_a_failed_job_cannot_be_turned_into_a_success_certificate(name: str) -> None:
    report = build(records.ALL_FAILURES[name]())
    with pytest.raises(InvalidCertificate):
        dataclasses.replace(report, kind="certificate")
    with pytest.raises(InvalidCertificate):
        dataclasses.replace(report, result=dataclasses.replace(report.result, success=True))
    # even claiming the level while keeping the failed facts is refused
    with pytest.raises(InvalidCertificate):
        dataclasses.replace(
            report,
            kind="certificate",
            result=dataclasses.replace(report.result, success=True, outcome="verified"),
            sanitization=dataclasses.replace(report.sanitization, level_achieved="clear", level_note=""),
        )


def test_a_success_cannot_be_downgraded_silently_either() -> None:
    cert = build(records.verified())
    with pytest.raises(InvalidCertificate, match="verified erasure"):
        dataclasses.replace(
            cert,
            kind="failure_report",
            result=dataclasses.replace(cert.result, success=False, reasons=("x",)),
        )


def test_level_rules_for_steps_overwrite_and_firmware() -> None:
    tool = Tool("tabula", "0.1.0")
    common: dict[str, Any] = dict(
        started_at="2025-03-01T10:00:00Z", finished_at="2025-03-01T10:10:00Z", completed=True, tool=tool
    )
    fw = Step(
        index=0,
        kind="firmware",
        technique="ata-sanitize-block-erase",
        level_requested="purge",
        level_achieved="purge",
        note="",
        command="hdparm --sanitize-block-erase",
        status="SD0: sanitize completed",
        **common,
    )
    overwrite = Step(
        index=1,
        kind="overwrite",
        technique="overwrite: zeros",
        level_requested="clear",
        level_achieved="clear",
        note="",
        pattern=records_pattern(),
        bytes_total=10,
        bytes_written=10,
        **common,
    )
    s = Sanitization(
        method_type="Purge",
        level_requested="purge",
        level_achieved="purge",
        level_note="",
        method="sanitize",
        method_details="",
        technique="firmware+overwrite",
        tool=tool,
        steps=(fw, overwrite),
        post_classification="",
        notes="",
    )
    assert s.level_achieved == "purge"
    # purge requested, firmware failed: achieved clear needs a reason
    failed_fw = dataclasses.replace(fw, level_achieved="none", note="drive reported sanitize failure")
    with pytest.raises(InvalidCertificate, match="lower than requested"):
        dataclasses.replace(s, steps=(failed_fw, overwrite), level_achieved="clear")
    lower = dataclasses.replace(
        s, steps=(failed_fw, overwrite), level_achieved="clear", level_note="sanitize failed"
    )
    assert lower.level_achieved == "clear"
    with pytest.raises(InvalidCertificate, match="more than any step"):
        dataclasses.replace(s, steps=(failed_fw, overwrite), level_note="x")
    with pytest.raises(InvalidCertificate, match="cannot reach Purge"):
        dataclasses.replace(overwrite, level_requested="purge", level_achieved="purge")
    with pytest.raises(InvalidCertificate, match="command"):
        dataclasses.replace(fw, command=None)
    with pytest.raises(InvalidCertificate, match="pattern"):
        dataclasses.replace(overwrite, pattern=None)
    with pytest.raises(InvalidCertificate, match="incomplete step"):
        dataclasses.replace(overwrite, completed=False, bytes_written=5)
    with pytest.raises(InvalidCertificate, match="method type"):
        dataclasses.replace(s, method_type="Clear")


def records_pattern() -> Any:
    from certs.model import PatternInfo

    return PatternInfo(kind="bytes", hex="00", seed=None, label="zeros")


def test_hidden_area_not_checked_is_explicit() -> None:
    assert HiddenArea().status == "not_checked"
    with pytest.raises(InvalidCertificate):
        HiddenArea(status="not_checked", hpa_bytes=4096)


def test_round_trip_through_canonical_json() -> None:
    for record in (
        records.verified(),
        records.verified(mode="sample"),
        *(f() for f in records.ALL_FAILURES.values()),
    ):
        cert = build(
            record, health={"smart": "PASSED", "power_on_hours": 1234, "temp": 31.5, "attrs": [1, 2.5]}
        )
        data = canonical_json(cert.to_dict())
        again = Certificate.from_dict(parse_json(data))
        assert again == cert
        assert canonical_json(again.to_dict()) == data
    assert again.health == {"smart": "PASSED", "power_on_hours": 1234, "temp": "31.5", "attrs": [1, "2.5"]}


def _doc() -> dict[str, Any]:
    return build(records.verified()).to_dict()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d.pop("media"), "missing field"),
        (lambda d: d["media"].update(accessible_bytes="1"), "expected an integer"),
        (lambda d: d["media"].update(rotational=1), "true/false"),
        (lambda d: d["media"].update(serial=5), "expected a string"),
        (lambda d: d.update(kind="success"), "expected one of"),
        (lambda d: d["sanitization"].update(steps={}), "expected a list"),
        (lambda d: d.update(schema="tabula.certificate/3"), "unknown certificate schema"),
        (lambda d: d.update(certificate_id="not-a-uuid"), "UUID"),
        (lambda d: d.update(issued_at="2025-03-01 10:00:00"), "UTC timestamp"),
        (lambda d: d["verification"]["checks"][0].update(coverage_ppm=999), "coverage_ppm"),
        (lambda d: d["result"].update(outcome="failed"), "not a success"),
        (lambda d: d["station"].update(sequence=0), "start at 1"),
        (lambda d: d["station"].update(previous="00" * 32), "first certificate"),
    ],
)
def test_from_dict_is_strict(mutate: Any, message: str) -> None:
    d = copy.deepcopy(_doc())
    mutate(d)
    with pytest.raises(SchemaError, match=message):
        Certificate.from_dict(d)


def test_canonical_json_refuses_floats_and_unsafe_ints() -> None:
    with pytest.raises(CanonicalError):
        canonical_json({"a": 1.5})
    with pytest.raises(CanonicalError):
        canonical_json({"a": 2**53})
    assert canonical_json({"b": "é", "a": [1, True, None]}) == '{"a":[1,true,null],"b":"é"}'.encode()
    for bad in (b'{"a":1,"a":2}', b'{"a":1.0}', b'{"a":NaN}', b"\xff", b"[1,"):
        with pytest.raises(MalformedEnvelope):
            parse_json(bad)


def test_utc_normalisation() -> None:
    assert utc("2025-03-01T11:00:00+01:00") == "2025-03-01T10:00:00Z"
    assert utc("2025-03-01T10:00:00") == "2025-03-01T10:00:00Z"
    assert utc("2025-03-01T10:00:00.250000Z") == "2025-03-01T10:00:00.250000Z"
    with pytest.raises(InvalidCertificate):
        utc("yesterday")


def test_settings_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "tabula.toml"
    p.write_text(
        '[certificate]\ntechnician = "Camille"\norganisation = "Atelier"\ndestination = "recycling"\n'
        'verification_url = "https://example.org/v"\nlanguage = "fr"\n',
        encoding="utf-8",
    )
    s = CertSettings.load(p)
    assert (s.technician, s.organisation, s.destination, s.language) == (
        "Camille",
        "Atelier",
        "recycling",
        "fr",
    )
    p.write_text('technician = "x"\ndestination = "landfill"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="destination"):
        CertSettings.load(p)
    p.write_text('tecnician = "typo"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="unknown certificate setting"):
        CertSettings.load(p)
    p.write_text("technician = \n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        CertSettings.load(p)
    with pytest.raises(SettingsError, match="cannot read"):
        CertSettings.load(tmp_path / "missing.toml")


def test_operator_fields_override_settings_per_job() -> None:
    rec = records.verified(operator={"asset_number": "PC-9", "donor": "Lycée Ampère"})
    cert = build_certificate(rec, settings=CertSettings(), station=STATION)
    assert cert.media.asset_number == "PC-9" and cert.media.source == "Lycée Ampère"
    assert cert.person.name == ""  # not configured: left blank for a handwritten name
