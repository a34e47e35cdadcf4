"""One set of field limits (certs/limits.py) for the station at plan time, the certificate model and
the hub: what the station accepts, the hub stores; what the hub would refuse, the station refuses
before writing a byte."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from certs import limits
from certs.errors import InvalidCertificate
from certs.limits import FieldTooLong
from certs.settings import CertSettings
from station.cli import main
from tests.test_sync_support import make_kit, make_org

MiB = 1 << 20


def _content(dev: str) -> bytes:
    fd = os.open(dev, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, MiB, 0)
    finally:
        os.close(fd)


@pytest.mark.root
@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--asset", "A" * (limits.ASSET_NUMBER_MAX + 1), "asset number is 201 characters"),
        ("--donor", "D" * (limits.DONOR_MAX + 1), "donor is 201 characters"),
    ],
)
def test_station_erase_refuses_over_long_operator_fields_before_writing(
    make_loop: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    words: str,
) -> None:
    monkeypatch.setenv("TABULA_HOME", str(tmp_path / "home"))
    dev = make_loop(MiB)
    with open(dev, "r+b") as f:
        f.write(b"donor data" * (MiB // 10))
    before = _content(dev)
    code = main(["erase", dev, "--yes", "--include-loop", option, value])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "at most 200" in err
    assert _content(dev) == before  # nothing written
    assert not (tmp_path / "home" / "jobs").exists() or not any((tmp_path / "home" / "jobs").iterdir())
    # At the limit it is accepted (plan only).
    assert main(["erase", dev, "--plan", "--include-loop", option, value[:-1]]) == 0


def test_a_certificate_over_the_limits_cannot_be_built(tmp_path: Path) -> None:
    org = make_org(tmp_path)
    kit = make_kit(tmp_path, org, "bench-1")
    cert = kit.certificate(asset="A" * limits.ASSET_NUMBER_MAX)
    with pytest.raises(FieldTooLong, match="asset number"):
        dataclasses.replace(cert.media, asset_number="A" * (limits.ASSET_NUMBER_MAX + 1))
    with pytest.raises(FieldTooLong, match="donor"):
        dataclasses.replace(cert.media, source="D" * (limits.DONOR_MAX + 1))
    with pytest.raises(FieldTooLong, match="serial"):
        dataclasses.replace(cert.media, serial="S" * (limits.DRIVE_FIELD_MAX + 1))
    with pytest.raises(FieldTooLong, match="technician"):
        dataclasses.replace(cert.person, name="T" * (limits.PERSON_FIELD_MAX + 1))
    with pytest.raises(InvalidCertificate, match="NUL"):
        dataclasses.replace(cert.media, asset_number="PC\x00")
    with pytest.raises(InvalidCertificate, match="sequence"):
        dataclasses.replace(cert.station, sequence=limits.SEQUENCE_MAX + 1, previous="ab" * 32)
    dataclasses.replace(cert.station, sequence=limits.SEQUENCE_MAX, previous="ab" * 32)  # the maximum is fine
    dataclasses.replace(cert.media, serial="NUL\x00PADDED")  # drive strings may hold NUL (the hub copes)


def test_plan_time_checks_cover_drive_strings() -> None:
    limits.check_drive({"model": "M" * limits.DRIVE_FIELD_MAX, "serial": None})
    with pytest.raises(FieldTooLong, match="drive model"):
        limits.check_drive({"model": "M" * (limits.DRIVE_FIELD_MAX + 1)})
    limits.check_operator({"asset_number": "x", "unrelated": "y" * 10_000})


def test_settings_are_checked_with_the_same_limits() -> None:
    limits.check_settings(CertSettings(technician="T" * limits.PERSON_FIELD_MAX))
    with pytest.raises(FieldTooLong, match="technician"):
        limits.check_settings(CertSettings(technician="T" * (limits.PERSON_FIELD_MAX + 1)))
    with pytest.raises(FieldTooLong, match="asset number"):
        limits.check_settings(CertSettings(asset_number="A" * (limits.ASSET_NUMBER_MAX + 1)))
