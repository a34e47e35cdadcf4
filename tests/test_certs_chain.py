"""The station's certificate chain: gaps, duplicates, breaks, reordering, crashes and concurrency."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import certs.build
import certs.issue
from certs.errors import SequenceError
from certs.issue import IssuedCertificate
from certs.sequence import STATE_FILE
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, make_station, payload_of


def issue_many(st: Station, n: int) -> list[IssuedCertificate]:
    out = []
    for i in range(n):
        rec = records.verified() if i % 3 != 1 else records.failed_verification()
        out.append(st.issue(rec))
    return out


def verdicts(st: Station) -> list[Verdict]:
    return st.verifier().verify_paths([st.cert_dir], chain=True)


def by_seq(vs: list[Verdict]) -> dict[int, list[Verdict]]:
    out: dict[int, list[Verdict]] = {}
    for v in vs:
        assert v.certificate is not None
        out.setdefault(v.certificate.station.sequence, []).append(v)
    return out


def chain_reasons(vs: list[Verdict]) -> set[tuple[int, str]]:
    return {
        (v.certificate.station.sequence, r)
        for v in vs
        if v.certificate is not None
        for r, _ in v.problems
        if r.startswith("chain_")
    }


def test_whole_chain_has_no_chain_problem(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = issue_many(st, 5)
    assert [i.sequence for i in issued] == [1, 2, 3, 4, 5]
    docs = [payload_of(i.json_path) for i in issued]
    assert docs[0]["station"]["previous"] is None
    for prev, cur in zip(issued, docs[1:], strict=False):
        assert cur["station"]["previous"] == prev.digest
    vs = verdicts(st)
    assert len(vs) == 10  # JSON and PDF of each: the same certificate counts once in the chain
    assert chain_reasons(vs) == set()
    for v in vs:
        assert v.ok == v.certificate.success  # type: ignore[union-attr]
        if not v.ok:
            assert [r for r, _ in v.problems] == ["failure_report"]


def _delete(i: IssuedCertificate) -> None:
    i.json_path.unlink()
    i.pdf_path.unlink()


def test_deleted_certificate_is_a_gap(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = issue_many(st, 5)
    _delete(issued[1])  # the failure report #2: exactly what someone would want to hide
    vs = verdicts(st)
    assert chain_reasons(vs) == {(3, "chain_gap")}
    gap = by_seq(vs)[3][0]
    assert not gap.ok and "chain gap at sequence 2" in " ".join(m for _, m in gap.problems)


def test_deleted_first_and_several(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = issue_many(st, 6)
    for i in (issued[0], issued[2], issued[3]):
        _delete(i)
    vs = verdicts(st)
    assert chain_reasons(vs) == {(2, "chain_gap"), (5, "chain_gap")}
    msgs = " ".join(m for v in by_seq(vs)[5] for _, m in v.problems)
    assert "sequence 3..4" in msgs


def test_without_chain_flag_a_gap_is_not_checked(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issued = issue_many(st, 3)
    _delete(issued[1])
    vs = st.verifier().verify_paths([st.cert_dir], chain=False)
    assert all(v.ok for v in vs)


def test_restored_state_gives_duplicates(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issue_many(st, 2)
    backup = (st.key_dir / STATE_FILE).read_bytes()
    st.issue(records.verified())
    (st.key_dir / STATE_FILE).write_bytes(backup)  # e.g. the station restored from an old backup
    st.issue(records.verified())
    vs = verdicts(st)
    assert chain_reasons(vs) == {(3, "chain_duplicate")}
    assert len(by_seq(vs)[3]) == 4 and not any(v.ok for v in by_seq(vs)[3])


def test_substituted_link_is_a_break(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issue_many(st, 2)
    state = json.loads((st.key_dir / STATE_FILE).read_text())
    state["last_digest"] = "00" * 32
    (st.key_dir / STATE_FILE).write_text(json.dumps(state))
    st.issue(records.verified())
    st.issue(records.verified())
    assert chain_reasons(verdicts(st)) == {(3, "chain_break")}


def test_backdated_certificate_is_reordered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = make_station(tmp_path)
    st.issue(records.verified())
    # still inside the endorsement's validity (it starts a day before it was made), but before #1
    earlier = (datetime.now(UTC) - timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    monkeypatch.setattr(certs.build, "now_utc", lambda: earlier)
    st.issue(records.verified())
    assert chain_reasons(verdicts(st)) == {(2, "chain_reordered")}


def test_chains_are_per_station_key(tmp_path: Path) -> None:
    a = make_station(tmp_path / "a", "bench-a")
    b = make_station(tmp_path / "b", "bench-b")
    issue_many(a, 2)
    issue_many(b, 3)
    shutil.copytree(a.cert_dir, tmp_path / "all", dirs_exist_ok=True)
    shutil.copytree(b.cert_dir, tmp_path / "all", dirs_exist_ok=True)
    (tmp_path / "t").mkdir()
    for s in (a, b):
        (tmp_path / "t" / f"{s.root.name}.pem").write_bytes(s.trust_dir.joinpath("org.pem").read_bytes())
    vs = Verifier(TrustStore.load([tmp_path / "t"])).verify_paths([tmp_path / "all"], chain=True)
    assert len(vs) == 10 and chain_reasons(vs) == set()


class Crash(Exception):
    pass


def test_crash_after_files_written_continues_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = make_station(tmp_path)
    st.issue(records.verified())

    def crash(self: Any, state: Any) -> Any:
        raise Crash("power cut before the state commit")

    with monkeypatch.context() as m:
        m.setattr(certs.issue.Sequencer, "commit", crash)
        with pytest.raises(Crash):
            st.issue(records.verified())
    assert "pending" in json.loads((st.key_dir / STATE_FILE).read_text())
    third = st.issue(records.verified())
    assert third.sequence == 3
    assert chain_reasons(verdicts(st)) == set()
    assert len(list(st.cert_dir.glob("*.json"))) == 3


def test_crash_before_the_signed_file_landed_reuses_the_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = make_station(tmp_path)
    st.issue(records.verified())
    real = certs.issue.atomic_write

    def write(path: Path, data: bytes, **kw: Any) -> None:
        if path.suffix == ".json":
            raise Crash("power cut while writing the certificate")
        real(path, data, **kw)

    with monkeypatch.context() as m:
        m.setattr(certs.issue, "atomic_write", write)
        with pytest.raises(Crash):
            st.issue(records.verified())
    assert len(list(st.cert_dir.glob("*.pdf"))) == 2  # the orphan PDF is there until recovery
    second = st.issue(records.verified())
    assert second.sequence == 2
    assert len(list(st.cert_dir.glob("*.pdf"))) == 2  # orphan removed, new one written
    assert chain_reasons(verdicts(st)) == set()


def test_lost_state_is_rebuilt_from_the_cert_dir(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    issue_many(st, 3)
    (st.key_dir / STATE_FILE).unlink()
    assert st.issue(records.verified()).sequence == 4
    assert chain_reasons(verdicts(st)) == set()


def test_state_of_another_key_is_refused(tmp_path: Path) -> None:
    st = make_station(tmp_path)
    st.issue(records.verified())
    state = json.loads((st.key_dir / STATE_FILE).read_text())
    state["kid"] = "11" * 32
    (st.key_dir / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(SequenceError, match="belongs to key"):
        st.issue(records.verified())
    (st.key_dir / STATE_FILE).write_text("{not json")
    with pytest.raises(SequenceError, match="corrupt"):
        st.issue(records.verified())


def _worker(root: str, n: int) -> list[int]:
    st = make_station_view(Path(root))
    return [st.issue(records.verified()).sequence for _ in range(n)]


def make_station_view(root: Path) -> Station:
    return Station(root=root, key_dir=root / "keys", cert_dir=root / "certs", trust_dir=root / "trust")


def test_concurrent_issuers_share_one_gapless_sequence(tmp_path: Path) -> None:
    make_station(tmp_path)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_worker, [(str(tmp_path), 3)] * 3)
    seqs = sorted(s for r in results for s in r)
    assert seqs == list(range(1, 10))
    st = make_station_view(tmp_path)
    vs = verdicts(st)
    assert len(vs) == 18 and all(v.ok for v in vs), [v.problems for v in vs if not v.ok]
