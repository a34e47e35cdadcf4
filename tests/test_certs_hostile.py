"""The verifier is total: a committed hostile corpus, huge and special files, and defects, never a traceback."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import certs.verify
from certs.cli import main
from certs.trust import TrustStore
from certs.verify import MAX_JSON_BYTES, MAX_PDF_BYTES, Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, make_station

REPO = Path(__file__).resolve().parent.parent
HOSTILE = REPO / "tests" / "fixtures" / "certs" / "hostile"
FILES = HOSTILE / "files"
EXPECTED: dict[str, str] = json.loads((HOSTILE / "expected.json").read_text())


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(TrustStore.load([HOSTILE / "trust"]))


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    return make_station(tmp_path_factory.mktemp("hostile"))


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in FILES.iterdir()) == sorted(EXPECTED)
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_file_gets_its_reason(verifier: Verifier, name: str) -> None:
    v = verifier.verify_file(FILES / name)
    assert not v.ok and v.reason == EXPECTED[name], v.problems


def test_the_whole_corpus_through_the_cli_is_one_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", str(FILES), "--trust", str(HOSTILE / "trust"), "--json", "--chain"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 1 and out.isascii()
    assert report["checked"] == len(EXPECTED) and report["valid"] == 0
    got = {Path(r["path"]).name: r["reason"] for r in report["results"]}
    assert got == EXPECTED


def test_as_a_real_process_no_traceback(tmp_path: Path) -> None:
    for extra in ([], ["--json"]):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "certs.cli",
                "verify",
                str(FILES),
                "--trust",
                str(HOSTILE / "trust"),
                *extra,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TABULA_HOME=str(tmp_path)),
        )
        assert r.returncode == 1, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        if extra:
            assert len(json.loads(r.stdout)["results"]) == len(EXPECTED)
        else:
            assert f"0/{len(EXPECTED)} valid" in r.stdout


def test_one_hostile_file_does_not_stop_a_folder(station: Station, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(FILES, folder)
    good = station.issue(records.verified())
    shutil.copy(good.json_path, folder / "zz-good.json")
    shutil.copy(good.pdf_path, folder / "zz-good.pdf")
    (folder / "loop").symlink_to(folder)  # a symbolic link loop is not followed
    verdicts = station.verifier().verify_paths([folder], chain=True)
    assert len(verdicts) == len(EXPECTED) + 2
    ok = [Path(v.path).name for v in verdicts if v.ok]
    assert ok == ["zz-good.json", "zz-good.pdf"]
    assert not any(v.reason == "internal_error" for v in verdicts)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(("name", "head"), [("huge.json", b'{"protected":"'), ("huge.pdf", b"%PDF-1.7\n")])
def test_a_sparse_gigabyte_is_refused_before_reading(tmp_path: Path, name: str, head: bytes) -> None:
    path = tmp_path / name
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(1 << 30)
    before = _max_rss_mib()
    v = Verifier(TrustStore()).verify_file(path)
    assert v.reason == "too_large" and str(1 << 30) in v.problems[0][1]
    assert _max_rss_mib() - before < 64  # nothing close to the file's size was read
    limit = MAX_PDF_BYTES if name.endswith(".pdf") else MAX_JSON_BYTES
    with path.open("r+b") as fh:
        fh.truncate(limit + 1)
    assert Verifier(TrustStore()).verify_file(path).reason == "too_large"


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    v = Verifier(TrustStore()).verify_file(fifo)  # opening a FIFO with no writer would block
    assert v.reason == "unreadable" and "not a regular file" in v.problems[0][1]
    assert Verifier(TrustStore()).verify_file(Path("/dev/zero")).reason == "unreadable"
    assert Verifier(TrustStore()).verify_file(tmp_path / "missing.json").reason == "unreadable"


def test_a_verifier_defect_is_reported_for_that_file_only(
    station: Station, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = station.issue(records.verified())
    bad = station.issue(records.verified())

    real = certs.verify.Verifier._envelope

    def flaky(self: Verifier, data: object, path: str) -> certs.verify.Verdict:
        if path == str(bad.json_path):
            raise RecursionError("maximum recursion depth exceeded")
        return real(self, data, path)

    monkeypatch.setattr(certs.verify.Verifier, "_envelope", flaky)
    code = main(
        ["verify", str(good.json_path), str(bad.json_path), "--trust", str(station.trust_dir), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["reason"] for r in report["results"]] == ["ok", "internal_error"]
    assert "RecursionError" in report["results"][1]["problems"][0]["message"]
