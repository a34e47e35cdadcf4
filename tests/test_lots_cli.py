"""``--lot`` and ``--asset`` on the headless commands: erase, destroy, diagnose.  Bad values are refused
before anything is written, with the reason in the technician's language; the plan shows them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from diagnostics import cli as diagnostics_cli
from host.runner import ReplayRunner
from station.cli import main
from tests.fixtures.certs.helpers import payload_of
from tests.test_diag_cli import SMALL, parse
from tests.test_diag_helpers import MACHINES
from tests.test_lots_sync import TOKEN, lots_app

MiB = 1 << 20


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.root
def test_the_plan_shows_lot_and_asset_number(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = make_loop(MiB)
    argv = ["erase", dev, "--include-loop", "--plan", "--lot", " LOT-2026-03 ", "--asset", "PC-0173"]
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    (plan,) = json.loads(out)
    assert plan["operator"]["lot"] == "LOT-2026-03" and plan["operator"]["asset_number"] == "PC-0173"
    code, out, _ = run(argv, capsys)
    assert code == 0 and "lot LOT-2026-03  asset number PC-0173" in out
    assert not (home / "jobs").exists()


@pytest.mark.root
@pytest.mark.parametrize(
    "lang, words",
    [
        ("en", "--lot 'LOT 2026': the lot reference may hold only letters, digits and . _ / - (not ' ')"),
        ("fr", "--lot 'LOT 2026' : la référence du lot ne peut contenir que des lettres"),
    ],
)
def test_a_bad_lot_is_refused_before_anything_is_written(
    make_loop: Any,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    lang: str,
    words: str,
) -> None:
    monkeypatch.setenv("TABULA_LANG", lang)
    dev = make_loop(MiB, fill=b"\x5a")
    code, out, err = run(["erase", dev, "--include-loop", "--yes", "--lot", "LOT 2026"], capsys)
    assert code == 2 and words in err, err
    assert not (home / "jobs").exists()
    code, _, err = run(["erase", dev, "--include-loop", "--yes", "--asset", "9" * 201], capsys)
    assert code == 2 and "--asset" in err and "200" in err
    with open(dev, "rb") as f:
        assert f.read(4096) == b"\x5a" * 4096


@pytest.mark.root
def test_the_erasure_signs_the_lot_and_warns_when_the_hub_does_not_know_it(
    make_loop: Any, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.testing import serve_in_thread

    asked: list[str] = []
    home.mkdir(parents=True)
    token = home / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    dev = make_loop(MiB)
    with serve_in_thread(lots_app(asked)) as url:
        (home / "sync.toml").write_text(f'url = "{url}"\ntoken_file = "{token}"\n')
        argv = ["erase", dev, "--yes", "--include-loop", "--lot", "LOT-2099-01", "--asset", "PC-7"]
        code, out, err = run(argv, capsys)
    assert code == 0, err
    assert asked == ["LOT-2099-01"] and "Lot LOT-2099-01 is unknown to the hub" in out
    (cert,) = (home / "certs").glob("*.json")
    media = payload_of(cert)["media"]
    assert (media["lot"], media["asset_number"]) == ("LOT-2099-01", "PC-7")


def test_station_destroy_takes_lot_and_asset(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_trainee import failed_job

    job_dir = failed_job(home / "jobs", home / "keys", home / "certs")
    code, _, err = run(["destroy", job_dir.name, "--method", "drill", "--by", "C", "--lot", "a b"], capsys)
    assert code == 2 and "--lot 'a b'" in err and not (job_dir / "destruction.json").exists()
    argv = ["destroy", job_dir.name, "--method", "drill", "--by", "C", "--lot", "LOT-1", "--asset", "PC-9"]
    code, out, err = run([*argv, "--json"], capsys)
    assert code == 0, err
    media = payload_of(Path(json.loads(out)["files"][0]))["media"]
    assert (media["lot"], media["asset_number"]) == ("LOT-1", "PC-9")


def test_station_diagnose_reports_lot_and_asset_and_refuses_bad_ones() -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse(["--json", "--drives-only", "--no-read-test", "--lot", "LOT-2026-03", "--asset", "PC-7"])
    code = diagnostics_cli.run(
        args, out=out, err=err, bounds=SMALL, runner=ReplayRunner(MACHINES / "qemu-nvme")
    )
    report = json.loads(out.getvalue())
    assert code == 0, err.getvalue()
    assert (report["schema"], report["lot"], report["asset_number"]) == (2, "LOT-2026-03", "PC-7")
    out, err = io.StringIO(), io.StringIO()
    code = diagnostics_cli.run(parse(["--lot", "LOT#3"]), out=out, err=err, bounds=SMALL)
    assert code == diagnostics_cli.EXIT_BAD_INPUT and "lot reference may hold only" in err.getvalue()
    assert out.getvalue() == ""
