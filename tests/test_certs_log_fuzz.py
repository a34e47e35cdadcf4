"""The log checks are total too: hostile proofs, chain heads and tree heads, and fuzzed ones.

A hostile corpus of the new file kinds (inclusion proofs, chain heads, tree heads, consistency
proofs), each with the reason it must get, then hypothesis mutations and random JSON through the
same code paths: never an ``internal_error`` (a caught traceback), always valid ASCII JSON out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.chainhead import sign_chain_head
from certs.cli import report_json
from certs.jws import envelope_bytes
from certs.keys import load_installed_endorsement, load_station_key
from certs.logcheck import FileCheck, check_heads, check_log, guarded_check
from certs.logcli import _consistency
from certs.tlog import LogKeys
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, make_station
from tests.fixtures.certs.logkit import LogKit, digest_of
from tests.test_certs_fuzz import json_values, mutate

RUNS: Counter[str] = Counter()
BIG = "9" * 5000


class World:
    """One station, two certificates in a log, and everything needed to check files against them."""

    def __init__(self, root: Path) -> None:
        self.station: Station = make_station(root / "st")
        self.paths = [self.station.issue(records.verified()).json_path for _ in range(2)]
        self.log = LogKit()
        for p in self.paths:
            self.log.add(digest_of(p), p.stem)
        self.keys: LogKeys = {self.log.kid: self.log.key.public_key()}
        self.trust = TrustStore.load([self.station.trust_dir])
        self.scratch = root / "scratch"
        self.scratch.mkdir()
        key = load_station_key(self.station.key_dir)
        endorsement = load_installed_endorsement(self.station.key_dir, key)
        assert endorsement is not None
        self.head = envelope_bytes(
            sign_chain_head(key, 2, digest_of(self.paths[1]), endorsement=endorsement.envelope.to_json())
        )

    def verdicts(self) -> list[Verdict]:
        return Verifier(self.trust).verify_paths(self.paths)

    def proof_check(self, data: bytes) -> str:
        """The reason the first certificate gets with ``data`` as its sidecar."""
        sidecar = self.paths[0].with_name(self.paths[0].stem + ".log.json")
        sidecar.write_bytes(data)
        verdicts = self.verdicts()
        check_log(verdicts, self.keys, [])
        return total(verdicts, [], "proof")[0]

    def head_check(self, data: bytes) -> str:
        path = self.scratch / "x.chain-head.json"
        path.write_bytes(data)
        verdicts = self.verdicts()
        files = check_heads(verdicts, [path], self.trust)
        return total(verdicts, files, "head")[1]

    def tree_check(self, data: bytes) -> str:
        new = self.scratch / "new.json"
        new.write_bytes(data)
        old = self.scratch / "old.json"
        old.write_text(json.dumps(self.log.sth(1)))

        class Args:
            pass

        args = Args()
        args.old, args.new, args.proof = old, new, None  # type: ignore[attr-defined]
        check = FileCheck(str(new), "consistency")
        guarded_check(check, lambda: _consistency(args, dict(self.keys), check))  # type: ignore[arg-type]
        return total([], [check], "tree")[1]


def total(verdicts: list[Verdict], files: list[FileCheck], name: str) -> tuple[str, str]:
    RUNS[name] += 1
    for v in verdicts:
        assert v.reason != "internal_error", v.problems
    for f in files:
        assert f.reason != "internal_error", f.problems
    text = report_json(verdicts, chain=True, files=files)
    assert text.isascii()
    json.loads(text)
    return (verdicts[0].reason if verdicts else ""), (files[0].reason if files else "")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("logfuzz"))


def _proof(world: World, **changes: Any) -> bytes:
    doc = world.log.proof(digest_of(world.paths[0])) | changes
    return json.dumps(doc).encode()


def _raw(text: str) -> Callable[[World], bytes]:
    return lambda w: text.encode()


HOSTILE_PROOFS: dict[str, tuple[Callable[[World], bytes], str]] = {
    "valid": (lambda w: _proof(w), "ok"),
    "empty": (_raw(""), "proof_malformed"),
    "bigint-index": (
        lambda w: _proof(w).replace(b'"leaf_index": 0', b'"leaf_index": ' + BIG.encode()),
        "proof_malformed",
    ),
    "deep": (_raw("[" * 100000 + "]" * 100000), "proof_malformed"),
    "float-size": (lambda w: _proof(w).replace(b'"tree_size": 2', b'"tree_size": 2.0'), "proof_malformed"),
    "duplicate-key": (lambda w: _proof(w)[:-1] + b', "leaf_index": 1}', "proof_malformed"),
    "bool-index": (lambda w: _proof(w, leaf_index=False), "proof_malformed"),
    "negative-index": (lambda w: _proof(w, leaf_index=-1), "proof_malformed"),
    "uppercase-hex": (lambda w: _proof(w, sha256=digest_of(w.paths[0]).upper()), "proof_malformed"),
    "too-many-hashes": (lambda w: _proof(w, inclusion=["00" * 32] * 65), "proof_malformed"),
    "hash-not-string": (lambda w: _proof(w, inclusion=[7]), "proof_malformed"),
    "extra-member": (lambda w: _proof(w, note="trust me"), "proof_malformed"),
    "head-is-a-list": (lambda w: _proof(w, tree_head=[]), "proof_malformed"),
    "head-null": (lambda w: _proof(w, tree_head=None), "proof_malformed"),
    "head-is-a-certificate": (
        lambda w: _proof(w, tree_head=json.loads(w.paths[0].read_bytes())),
        "proof_malformed",
    ),
    "lone-surrogate": (lambda w: _proof(w, certificate_id="\ud800"), "proof_malformed"),
    "not-utf8": (lambda w: b'{"schema": "\xff"}', "proof_malformed"),
    "other-size": (lambda w: _proof(w, tree_size=1), "proof_invalid"),
    "wrong-index": (lambda w: _proof(w, leaf_index=1), "proof_invalid"),
    "huge": (lambda w: b" " * (5 * 1024 * 1024), "too_large"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROOFS))
def test_hostile_proofs_get_their_reason(world: World, name: str) -> None:
    make, reason = HOSTILE_PROOFS[name]
    assert world.proof_check(make(world)) == reason


def _head_doc(world: World) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(world.head)
    return doc


HOSTILE_HEADS: dict[str, tuple[Callable[[World], bytes], str]] = {
    "valid": (lambda w: w.head, "ok"),
    "empty": (_raw(""), "malformed"),
    "bigint": (_raw('{"protected": ' + BIG + "}"), "malformed"),
    "tree-head-instead": (lambda w: json.dumps(w.log.sth()).encode(), "malformed"),
    "certificate-instead": (lambda w: w.paths[0].read_bytes(), "malformed"),
    "bad-signature": (lambda w: json.dumps(_head_doc(w) | {"signature": "A" * 86}).encode(), "bad_signature"),
    "unprotected-member": (lambda w: json.dumps(_head_doc(w) | {"header": {"x": 1}}).encode(), "malformed"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HEADS))
def test_hostile_chain_heads_get_their_reason(world: World, name: str) -> None:
    make, reason = HOSTILE_HEADS[name]
    assert world.head_check(make(world)) == reason


HOSTILE_TREES: dict[str, tuple[Callable[[World], bytes], str]] = {
    "valid": (lambda w: json.dumps(w.log.consistency(1)).encode(), "ok"),
    "empty": (_raw(""), "proof_malformed"),
    "bigint": (_raw('{"schema": "tabula.log-consistency/1", "first_size": ' + BIG + "}"), "proof_malformed"),
    "deep": (_raw("{" + '"a":{' * 5000 + "}" * 5001), "proof_malformed"),
    "head-null": (
        lambda w: json.dumps(w.log.consistency(1) | {"tree_head": None}).encode(),
        "proof_malformed",
    ),
    "wrong-sizes": (
        lambda w: json.dumps(w.log.consistency(1) | {"first_size": 2}).encode(),
        "proof_malformed",
    ),
    "bad-hash": (
        lambda w: json.dumps(w.log.consistency(1) | {"consistency": ["zz" * 32]}).encode(),
        "proof_malformed",
    ),
    "forged": (
        lambda w: json.dumps(w.log.consistency(1) | {"consistency": ["00" * 32]}).encode(),
        "inconsistent_tree",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TREES))
def test_hostile_tree_heads_get_their_reason(world: World, name: str) -> None:
    make, reason = HOSTILE_TREES[name]
    assert world.tree_check(make(world)) == reason


# --- fuzzing -------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=700,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EDITS = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from("rid")), min_size=1, max_size=6
)


@FUZZ
@given(edits=EDITS)
def test_mutated_proofs_never_crash(world: World, edits: list[tuple[int, int, str]]) -> None:
    world.proof_check(bytes(mutate(_proof(world), edits)))


@FUZZ
@given(edits=EDITS)
def test_mutated_chain_heads_never_crash(world: World, edits: list[tuple[int, int, str]]) -> None:
    world.head_check(bytes(mutate(world.head, edits)))


@FUZZ
@given(edits=EDITS)
def test_mutated_consistency_proofs_never_crash(world: World, edits: list[tuple[int, int, str]]) -> None:
    world.tree_check(bytes(mutate(json.dumps(world.log.consistency(1)).encode(), edits)))


@settings(FUZZ, max_examples=300)
@given(obj=json_values, kind=st.sampled_from(["proof", "head", "tree"]))
def test_random_json_in_every_log_file_kind(world: World, obj: Any, kind: str) -> None:
    data = json.dumps(obj).encode()
    reason = {"proof": world.proof_check, "head": world.head_check, "tree": world.tree_check}[kind](data)
    assert reason != "ok"


def test_zz_log_fuzz_volume() -> None:
    """Run last in this module: the generated log files add up to thousands per run."""
    assert sum(RUNS.values()) >= 2_400, RUNS
