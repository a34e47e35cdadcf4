"""The TUI's certificate check tells a genuine failure report from a forged or broken certificate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.tui.screens import certificate_check
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import make_station


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("TABULA_HOME", str(tmp_path))  # keys in $TABULA_HOME/keys, as the TUI reads them
    return make_station(tmp_path, endorsed=False)


def test_verified_certificate_is_valid(station: object) -> None:
    issued = station.issue(records.verified())  # type: ignore[attr-defined]
    assert "Signature valid, signed by this station" in certificate_check([str(issued.json_path)]).plain


def test_failure_report_is_authentic_but_not_erased(station: object) -> None:
    issued = station.issue(records.failed_verification())  # type: ignore[attr-defined]
    text = certificate_check([str(issued.json_path)]).plain
    assert "failure report" in text and "NOT erased" in text
    assert "NOT valid" not in text


def test_altered_certificate_is_not_valid(station: object) -> None:
    issued = station.issue(records.verified())  # type: ignore[attr-defined]
    obj = json.loads(issued.json_path.read_text())
    sig = obj["signature"]
    obj["signature"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    issued.json_path.write_text(json.dumps(obj))
    assert "Signature NOT valid" in certificate_check([str(issued.json_path)]).plain
