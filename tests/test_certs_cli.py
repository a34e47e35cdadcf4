"""`station verify` and `station keys`, through the argparse wiring that station/cli.py uses."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certs.cli import main, register, run_keys, run_verify
from certs.issue import issue_certificate
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import SETTINGS

REPO = Path(__file__).resolve().parent.parent


def test_register_adds_verify_and_keys() -> None:
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["verify", "a.json", "b.pdf", "--trust", "t1", "--trust", "t2", "--chain", "--json"]
    )
    assert args.func is run_verify and args.paths == [Path("a.json"), Path("b.pdf")]
    assert args.trust == [Path("t1"), Path("t2")] and args.chain and args.json
    args = parser.parse_args(["keys", "endorse", "--station-pub", "p.pem", "--station-id", "s1"])
    assert args.func is run_keys and args.keys_command == "endorse"
    with pytest.raises(SystemExit):
        parser.parse_args(["keys"])


def test_full_workflow(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--station-id", "bench-1"]) == 0
    out = capsys.readouterr().out
    key_pem = (home / "keys" / "station.key").read_text()
    assert "PRIVATE KEY" in key_pem and key_pem.strip() not in out and "PRIVATE" not in out
    assert main(["keys", "init", "--station-id", "bench-1"]) == 2
    assert "already exists" in capsys.readouterr().err

    assert main(["keys", "export"]) == 0
    station_pem = capsys.readouterr().out
    assert station_pem.startswith(
        "Tabula-Role: station\nTabula-Station-Id: bench-1\n-----BEGIN PUBLIC KEY-----"
    )
    (tmp_path / "bench-1.pem").write_text(station_pem)

    org_home = tmp_path / "admin"
    assert main(["keys", "--key-dir", str(org_home), "init", "--org", "Atelier Réemploi"]) == 0
    assert main(["keys", "--key-dir", str(org_home), "export", "--org"]) == 0
    org_pem = capsys.readouterr().out.split("\n", 2)[-1]
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "org.pem").write_text(org_pem[org_pem.index("-----BEGIN") :])
    endorsement = tmp_path / "e.json"
    argv = ["keys", "--key-dir", str(org_home), "endorse", "--station-pub", str(tmp_path / "bench-1.pem")]
    assert main([*argv, "--station-id", "bench-1", "-o", str(endorsement)]) == 0
    assert main(["keys", "import-endorsement", str(endorsement)]) == 0
    capsys.readouterr()

    good = issue_certificate(
        records.verified(), key_dir=home / "keys", cert_dir=home / "certs", settings=SETTINGS
    )
    assert main(["verify", str(good.json_path), str(good.pdf_path), "--trust", str(trust), "--chain"]) == 0
    out = capsys.readouterr().out
    assert out.count("OK ") == 2 and "WD-WCC4N1234567" in out and "2/2 valid" in out

    bad = issue_certificate(records.interrupted(), key_dir=home / "keys", cert_dir=home / "certs")
    assert main(["verify", str(home / "certs"), "--trust", str(trust), "--json", "--chain"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checked"] == 4 and report["valid"] == 2 and not report["ok"]
    failed = [r for r in report["results"] if not r["ok"]]
    assert {r["certificate_id"] for r in failed} == {bad.certificate_id}
    assert all(r["reason"] == "failure_report" and r["outcome"] == "interrupted" for r in failed)

    # without --trust: $TABULA_HOME/trust is absent, the station's own key is trusted
    assert main(["verify", str(good.json_path)]) == 0
    capsys.readouterr()

    # a tampered file: exit 1, reason printed
    forged = tmp_path / "forged.json"
    obj = json.loads(good.json_path.read_text())
    obj["signature"] = json.loads(bad.json_path.read_text())["signature"]
    forged.write_text(json.dumps(obj))
    assert main(["verify", str(forged), "--trust", str(trust)]) == 1
    assert "bad_signature" in capsys.readouterr().out


def test_verify_exit_codes_for_edge_cases(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["verify", str(empty), "--trust", str(empty)]) == 1  # nothing verified is not a success
    assert "no certificate found" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.json"), "--trust", str(empty)]) == 1
    assert "unreadable" in capsys.readouterr().out
    assert main(["verify", str(empty), "--trust", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["verify", str(empty), "--trust", str(tmp_path / "nope"), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["error"]["reason"] == "trust_error" and report["results"] == []


def test_keys_without_a_key(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "export"]) == 2
    assert "station keys init" in capsys.readouterr().err


def test_as_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, TABULA_HOME=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "certs.cli", "keys", "init", "--station-id", "s1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "fingerprint" in r.stdout and "PRIVATE" not in r.stdout + r.stderr


def test_keys_with_roles_endorse_and_revoke(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = tmp_path / "admin"
    assert main(["keys", "init", "--station-id", "bench-1"]) == 0
    assert main(["keys", "--key-dir", str(admin), "init", "--org", "Atelier Réemploi"]) == 0
    capsys.readouterr()
    assert main(["keys", "--key-dir", str(admin), "export", "--org"]) == 0
    org_pem = capsys.readouterr().out
    assert org_pem.startswith("Tabula-Role: organisation\n-----BEGIN PUBLIC KEY-----")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "org.pem").write_text(org_pem)
    main(["keys", "export"])
    (tmp_path / "bench-1.pem").write_text(capsys.readouterr().out)
    endorsement = tmp_path / "e.json"
    argv = ["keys", "--key-dir", str(admin), "endorse", "--station-pub", str(tmp_path / "bench-1.pem")]
    assert main([*argv, "--station-id", "bench-1", "--not-before", "2020-01-01", "--valid-days", "0"]) == 2
    assert "--valid-days must be positive" in capsys.readouterr().err
    assert main([*argv, "--station-id", "bench-1", "--valid-days", "30", "-o", str(endorsement)]) == 0
    body = json.loads(_payload(endorsement))
    assert body["role"] == "station" and body["not_after"] > body["not_before"]
    assert main(["keys", "import-endorsement", str(endorsement)]) == 0
    assert f"(from {body['not_before']} to {body['not_after']})" in capsys.readouterr().out
    good = issue_certificate(
        records.verified(), key_dir=home / "keys", cert_dir=home / "certs", settings=SETTINGS
    )
    assert main(["verify", str(good.json_path), "--trust", str(trust)]) == 0
    capsys.readouterr()

    # revoke the station key from yesterday: its certificate (signed today) is refused
    revoke_argv = ["keys", "--key-dir", str(admin), "revoke", "--key", str(tmp_path / "bench-1.pem")]
    assert main([*revoke_argv, "--at", "2020-01-01T00:00:00Z", "--comment", "stolen"]) == 0
    assert "now lists 1 key(s)" in capsys.readouterr().out
    assert main([*revoke_argv]) == 2  # already revoked in that list
    assert "already revoked" in capsys.readouterr().err
    assert (
        main(["keys", "--key-dir", str(admin), "revoke", "--kid", "ab" * 32, "--reason", "superseded"]) == 0
    )
    assert "now lists 2 key(s)" in capsys.readouterr().out
    (trust / "revocations.json").write_bytes((admin / "revocations.json").read_bytes())
    assert main(["verify", str(good.json_path), "--trust", str(trust), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["reason"] == "revoked_key" and "stolen" in result["problems"][0]["message"]


def _payload(path: Path) -> str:
    from certs.canonical import b64url_decode

    return b64url_decode(json.loads(path.read_text())["payload"]).decode()


FORGED = "OK    forged.json: Western Digital WDC WD5000AAKX s\u2215n WD-1: erased (clear) and verified"  # no "/" in a name


@pytest.mark.parametrize(
    "name",
    [
        "x\r" + FORGED + "\x1b[K.json",
        "x\x1b[2K\x1b[1G" + FORGED + ".json",
        "\u202e" + "nosj.drocer-deliaf" + "\u2066.json",
        "x\n" + FORGED + "\x85\u2028.json",
    ],
)
def test_file_names_cannot_forge_output_lines(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    main(["keys", "init", "--station-id", "bench-1"])
    failure = issue_certificate(records.interrupted(), key_dir=home / "keys", cert_dir=home / "certs")
    hostile = tmp_path / "in" / name
    hostile.parent.mkdir()
    hostile.write_bytes(failure.json_path.read_bytes())
    capsys.readouterr()
    assert main(["verify", str(hostile.parent)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not any(line.startswith("OK") for line in lines), out
    assert (
        len(lines) == 4 and lines[0].startswith("FAIL  ") and lines[-1] == "0/1 valid erasure certificate(s)"
    )
    for bad in ("\r", "\x1b", "\u202e", "\u2066", "\x85", "\u2028"):
        assert bad not in out
    assert "failure_report" in out and "NOT ERASED" in out


def test_json_output_survives_undecodable_names(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    main(["keys", "init", "--station-id", "bench-1"])
    good = issue_certificate(records.verified(), key_dir=home / "keys", cert_dir=home / "certs")
    folder = tmp_path / "raw"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/\xff\xfe\x1b.json"
    with open(raw_name, "wb") as fh:
        fh.write(good.json_path.read_bytes())
    capsys.readouterr()
    assert main(["verify", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.isascii()
    assert json.loads(out)["results"][0]["path"].endswith("/\\xff\\xfe\x1b.json")
    assert main(["verify", str(folder)]) == 0
    human = capsys.readouterr().out
    assert "\\udcff" in human and "\\x1b" in human and "\x1b" not in human
