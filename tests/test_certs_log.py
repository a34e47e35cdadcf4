"""station verify --log, --chain-head and station log consistency, offline, with every reason.

The log here is built in memory (tests/fixtures/certs/logkit.py) exactly as the hub builds it; the
hub's own answers are checked the same way in tests/test_hub_log.py and tests/test_sync_log.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certs.canonical import b64url_decode, b64url_encode
from certs.chainhead import CHAIN_HEAD_FILE, sign_chain_head
from certs.cli import main
from certs.jws import envelope_bytes
from certs.keys import load_installed_endorsement, load_station_key
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, make_station
from tests.fixtures.certs.logkit import LogKit, digest_of, write_json


@pytest.fixture
def station(tmp_path: Path) -> Station:
    return make_station(tmp_path / "st")


@pytest.fixture
def logged(station: Station, tmp_path: Path) -> tuple[LogKit, list[Path], Path]:
    """Three certificates (the last a failure report), all in a log, each with its sidecar."""
    log = LogKit()
    paths = [station.issue(records.verified()).json_path for _ in range(2)]
    paths.append(station.issue(records.failed_bad_ranges()).json_path)
    for p in paths:
        log.add(digest_of(p), p.stem)
    for p in paths:
        log.write_sidecar(p, digest_of(p))
    return log, paths, log.write_key(tmp_path / "hub-log.pem")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    assert out.isascii()
    return code, json.loads(out)


def reasons(report: dict[str, Any]) -> dict[str, str]:
    return {Path(r["path"]).name: r["reason"] for r in report["results"]}


def test_a_folder_with_its_proofs_verifies_with_the_log_key_alone(
    station: Station, logged: tuple[LogKit, list[Path], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    log, paths, key = logged
    code, report = run(
        capsys, "verify", str(station.cert_dir), "--trust", str(station.trust_dir), "--log", str(key)
    )
    assert code == 1  # the failure report fails as such, not for its proof
    by_name = {Path(r["path"]).name: r for r in report["results"]}
    assert by_name[paths[2].name]["reason"] == "failure_report"
    for i, p in enumerate(paths):
        for suffix in (".json", ".pdf"):  # the PDF finds the same sidecar
            r = by_name[p.stem + suffix]["log"]
            assert (r["leaf_index"], r["tree_size"], r["log_id"]) == (i, 3, log.kid)
    code, report = run(
        capsys, "verify", *map(str, paths[:2]), "--trust", str(station.trust_dir), "--log", str(key)
    )
    assert code == 0 and report["ok"] and report["files"] == []
    main(["verify", str(paths[0]), "--trust", str(station.trust_dir), "--log", str(key)])
    human = capsys.readouterr().out
    assert "OK    " in human and "in the hub's log: leaf 0 of the tree of 3 signed" in human


def _tamper(log: LogKit, paths: list[Path], case: str) -> Path:
    """Break the first certificate's sidecar one way; returns the sidecar."""
    digest = digest_of(paths[0])
    doc = log.proof(digest)
    if case == "proof_invalid":
        doc["inclusion"][0] = "00" * 32
    elif case == "sth_bad_signature":
        head = doc["tree_head"]
        payload = json.loads(b64url_decode(head["payload"]))
        payload["tree_size"] = 4
        head["payload"] = b64url_encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    elif case == "log_key_unknown":
        doc["tree_head"] = LogKit(
            key=Ed25519PrivateKey.generate(), frontier=log.frontier, nodes=log.nodes
        ).sth()
    elif case == "proof_mismatch":
        doc = log.proof(digest_of(paths[1]))
        doc["certificate_id"] = paths[0].stem
    elif case == "proof_malformed":
        doc["leaf_index"] = 7  # not in a tree of 3
    elif case == "log_proof_missing":
        path = paths[0].with_name(paths[0].stem + ".log.json")
        path.unlink()
        return path
    return log.write_sidecar(paths[0], digest, doc)


@pytest.mark.parametrize(
    "case",
    [
        "proof_invalid",
        "sth_bad_signature",
        "log_key_unknown",
        "proof_mismatch",
        "proof_malformed",
        "log_proof_missing",
    ],
)
def test_every_broken_proof_is_refused_with_its_reason(
    station: Station, logged: tuple[LogKit, list[Path], Path], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    log, paths, key = logged
    _tamper(log, paths, case)
    code, report = run(
        capsys, "verify", *map(str, paths[:2]), "--trust", str(station.trust_dir), "--log", str(key)
    )
    assert code == 1 and reasons(report) == {paths[0].name: case, paths[1].name: "ok"}
    main(["verify", str(paths[0]), "--trust", str(station.trust_dir), "--log", str(key)])
    assert f"      {case}: " in capsys.readouterr().out


def test_a_proof_given_explicitly_goes_to_the_record_it_names(
    station: Station,
    logged: tuple[LogKit, list[Path], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log, paths, key = logged
    evil = tmp_path / "renamed\x1b[2J\rOK.json"  # a hostile name: escaped in the output
    shutil.copy(paths[0], evil)
    proof = write_json(tmp_path / "proof-of-the-first.json", log.proof(digest_of(paths[0])))
    stray = write_json(tmp_path / "stray.json", log.proof(digest_of(paths[1])))
    argv = [
        "verify",
        str(evil),
        "--trust",
        str(station.trust_dir),
        "--log",
        str(key),
        "--log-proof",
        str(proof),
    ]
    code, report = run(capsys, *argv)
    assert code == 0 and report["results"][0]["log"]["leaf_index"] == 0
    code, report = run(capsys, *argv, "--log-proof", str(stray))
    assert code == 1 and [f["reason"] for f in report["files"]] == [
        "ok",
        "proof_malformed",
    ]  # names no record here
    main(argv)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "renamed\\x1b[2J\\x0dOK.json" in out
    assert main(["verify", str(evil), "--log-proof", str(proof)]) == 2  # a proof needs the log key
    capsys.readouterr()
    (tmp_path / "org.pem").write_bytes((station.trust_dir / "org.pem").read_bytes())
    assert main(["verify", str(evil), "--log", str(tmp_path / "org.pem")]) == 2  # not a log key
    assert "not a hub's log key" in capsys.readouterr().err


# --- chain heads -------------------------------------------------------------------------------------


def _head(station: Station, sequence: int, digest: str, path: Path) -> Path:
    key = load_station_key(station.key_dir)
    endorsement = load_installed_endorsement(station.key_dir, key)
    assert endorsement is not None
    env = sign_chain_head(key, sequence, digest, endorsement=endorsement.envelope.to_json())
    path.write_bytes(envelope_bytes(env))
    return path


def test_a_chain_head_reveals_a_deleted_newest_certificate(
    station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = [station.issue(records.verified()) for _ in range(4)]
    head = _head(station, 4, issued[-1].digest, station.cert_dir / CHAIN_HEAD_FILE)
    code, report = run(capsys, "verify", str(station.cert_dir), "--trust", str(station.trust_dir), "--chain")
    assert code == 0 and report["files"][0]["kind"] == "chain_head" and report["files"][0]["ok"]
    for f in (issued[-1].json_path, issued[-1].pdf_path, issued[-2].json_path, issued[-2].pdf_path):
        f.unlink()  # the newest two are gone: no gap shows it
    code, report = run(capsys, "verify", str(station.cert_dir), "--trust", str(station.trust_dir), "--chain")
    assert code == 1 and set(reasons(report).values()) == {"ok"}
    files = report["files"]
    assert (
        files[0]["reason"] == "chain_truncated" and "#3 to #4 missing" in files[0]["problems"][0]["message"]
    )
    # the same head given explicitly, to a copy of the folder without it
    copy = tmp_path / "copy"
    shutil.copytree(station.cert_dir, copy, ignore=shutil.ignore_patterns(CHAIN_HEAD_FILE))
    code, report = run(
        capsys, "verify", str(copy), "--trust", str(station.trust_dir), "--chain-head", str(head)
    )
    assert code == 1 and report["chain"] and report["files"][0]["reason"] == "chain_truncated"
    main(["verify", str(copy), "--trust", str(station.trust_dir), "--chain-head", str(head)])
    assert "FAIL  " in capsys.readouterr().out


def test_a_chain_head_reveals_one_branch_of_a_fork(
    station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = [station.issue(records.verified()) for _ in range(3)]
    branch = tmp_path / "branch"
    shutil.copytree(station.cert_dir, branch)
    head = _head(station, 3, issued[-1].digest, tmp_path / "published.chain-head.json")
    # the other branch: #3 issued again after restoring the sequence state of #2
    (branch / issued[-1].json_path.name).unlink()
    (branch / issued[-1].pdf_path.name).unlink()
    state = json.loads((station.key_dir / "sequence.json").read_text())
    state.update(sequence=2, last_digest=issued[1].digest)
    (station.key_dir / "sequence.json").write_text(json.dumps(state))
    other = station.issue(records.verified())
    shutil.copy(other.json_path, branch)
    code, report = run(
        capsys, "verify", str(branch), "--trust", str(station.trust_dir), "--chain-head", str(head)
    )
    assert code == 1
    assert (
        reasons(report)[other.json_path.name] == "chain_fork" and report["files"][0]["reason"] == "chain_fork"
    )
    code, report = run(
        capsys, "verify", str(station.cert_dir), "--trust", str(station.trust_dir), "--chain-head", str(head)
    )
    assert report["files"][0]["reason"] != "chain_truncated"  # the station's own folder holds both #3


def test_an_untrusted_or_broken_chain_head_counts_for_nothing(
    station: Station, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = [station.issue(records.verified()) for _ in range(2)]
    stranger = make_station(tmp_path / "stranger")
    foreign = _head(stranger, 9, "ab" * 32, tmp_path / "foreign.chain-head.json")
    broken = tmp_path / "broken.chain-head.json"
    doc = json.loads(_head(station, 2, issued[-1].digest, broken).read_text())
    doc["signature"] = doc["signature"][:-4] + "AAAA"
    broken.write_text(json.dumps(doc))
    code, report = run(
        capsys, "verify", str(station.cert_dir), "--trust", str(station.trust_dir),
        "--chain-head", str(foreign), "--chain-head", str(broken),
    )  # fmt: skip
    assert code == 1
    assert [f["reason"] for f in report["files"]] == ["unendorsed_key", "bad_signature"]


# --- consistency -----------------------------------------------------------------------------------------


def test_station_log_consistency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = LogKit()
    for i in range(11):
        log.add(f"{i:064x}", f"00000000-0000-4000-8000-{i:012d}")
    old = write_json(tmp_path / "old.json", log.sth(6))
    answer = write_json(tmp_path / "answer.json", log.consistency(6))
    key = str(log.write_key(tmp_path / "log.pem"))
    code, doc = run(capsys, "log", "consistency", "--log", key, str(old), str(answer))
    assert code == 0 and doc["ok"] and doc["old"]["tree_size"] == 6 and doc["new"]["tree_size"] == 11
    assert main(["log", "consistency", "--log", key, str(answer), str(old)]) == 0  # either order
    assert "extends the tree of 6" in capsys.readouterr().out
    new = write_json(tmp_path / "new.json", log.sth())
    proof = write_json(tmp_path / "proof.json", log.consistency(6))
    assert main(["log", "consistency", "--log", key, str(old), str(new), "--proof", str(proof)]) == 0
    capsys.readouterr()
    code, doc = run(capsys, "log", "consistency", "--log", key, str(old), str(new))
    assert code == 1 and doc["reason"] == "proof_malformed"  # two bare tree heads: no proof
    # a rewritten history: the hub's key signs a tree of 6 whose leaf 2 differs
    forged = LogKit(key=log.key)
    for i in range(11):
        forged.add(f"{i + (i == 2):064x}", f"00000000-0000-4000-8000-{i:012d}")
    bad_old = write_json(tmp_path / "forged-old.json", forged.sth(6))
    code, doc = run(capsys, "log", "consistency", "--log", key, str(bad_old), str(answer))
    assert code == 1 and doc["reason"] == "inconsistent_tree"
    same_size = write_json(tmp_path / "fork.json", forged.sth(11))
    code, doc = run(capsys, "log", "consistency", "--log", key, str(same_size), str(answer))
    assert code == 1 and doc["reason"] == "inconsistent_tree" and "forked" in doc["problems"][0]["message"]
    other = write_json(tmp_path / "other.json", LogKit().sth(0))
    code, doc = run(capsys, "log", "consistency", "--log", key, str(other), str(answer))
    assert code == 1 and doc["reason"] == "log_key_unknown"
    (tmp_path / "junk.pem").write_text("junk")
    assert main(["log", "consistency", "--log", str(tmp_path / "junk.pem"), str(old), str(answer)]) == 2
    main(["log", "consistency", "--log", key, str(bad_old), str(tmp_path / "evil\x1b.json")])
    out = capsys.readouterr().out
    assert "FAIL  " in out and "\x1b" not in out and "unreadable" in out
