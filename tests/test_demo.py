"""The README's "see it work" command, headless: healthy drives verified, the failing one honestly failed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from station.cli import main
from station.demo import DEMO_DRIVES, count_secrets

pytestmark = pytest.mark.root


def test_headless_demo_erases_and_tells_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TABULA_HOME", raising=False)
    code = main(["demo", "--cli", "--dir", str(tmp_path), "--method", "zero", "--verify", "last"])
    out = capsys.readouterr().out
    assert code == 0, out
    records = [json.loads(p.read_text()) for p in (tmp_path / "state" / "jobs").glob("*/record.json")]
    by_file = {Path(r["plan"]["drive"]["backing_file"]).name: r for r in records}
    assert set(by_file) == {d.name for d in DEMO_DRIVES}
    for d in DEMO_DRIVES:
        r = by_file[d.name]
        if d.failing:
            assert r["outcome"] == "failed" and r["nist_level"] is None
            assert any(b["op"] == "write" for p in r["passes"] for b in p["bad_ranges"])
        else:
            assert r["outcome"] == "verified" and r["nist_level"] == "clear"
            assert count_secrets(tmp_path / d.name) == 0
    assert (
        "6/8 valid erasure certificate(s)" in out
    )  # 3 drives x (json + pdf); the failure report never verifies
    # everything the demo attached or mounted is gone again
    assert str(tmp_path) not in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
