"""The lot report verifier is total: a committed hostile corpus and fuzzed reports, never a traceback,
never a forgery accepted.

``tests/fixtures/certs/lot_hostile`` (``make_lot_hostile.py``) holds one file per weak point with the
reason it must get; hypothesis then generates signed payloads, mutated valid reports, random bytes and
mutated PDFs (more than 2,000 inputs per run, counted by ``test_zz_fuzz_volume``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.canonical import CanonicalError, b64url_encode, canonical_json
from certs.cli import main, report_json
from certs.jws import TYP_LOT_REPORT, jwk_of, kid_of
from certs.keys import SigningKey, init_org_key
from certs.lotcheck import check_records, verify_lot_file
from certs.lotpdf import render_lot_report
from certs.lotreport import LotReport, LotVerdict, sign_lot_report, verify_lot_report
from certs.trust import TrustStore
from tests.fixtures.certs import lots

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "fixtures" / "certs" / "lot_hostile"
FILES = CORPUS / "files"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text())
CERT_CORPUS = REPO / "tests" / "fixtures" / "certs" / "hostile" / "files"
RUNS: Counter[str] = Counter()


def fuzz(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def total(v: LotVerdict, name: str) -> LotVerdict:
    """A real answer: no caught defect, and the --json report holding it is valid ASCII JSON."""
    RUNS[name] += 1
    assert v.reason != "internal_error", v.problems
    text = report_json([], chain=False, lots=[v])
    assert text.isascii() and json.loads(text)["lot_reports"][0]["reason"] == v.reason
    return v


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return TrustStore.load([CORPUS / "trust"])


# --- the committed corpus ------------------------------------------------------------------------------


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in FILES.iterdir()) == sorted(EXPECTED) and len(EXPECTED) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_report_gets_its_reason(trust: TrustStore, name: str) -> None:
    v = total(verify_lot_file(FILES / name, trust), "corpus")
    assert not v.ok and v.reason == EXPECTED[name], v.problems


def test_the_corpus_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """Given by name, each file is verified as a lot report or (not one) as a certificate: one JSON document."""
    names = sorted(EXPECTED)
    code = main(["verify", *(str(FILES / n) for n in names), "--trust", str(CORPUS / "trust"), "--json"])
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert code == 1 and out.isascii() and not doc["ok"]
    got = {Path(r["path"]).name: r["reason"] for r in doc["lot_reports"] + doc["results"]}
    assert sorted(got) == names
    # what is not recognised as a lot report still fails, with the certificate verifier's reason
    for name, reason in got.items():
        assert reason not in ("ok", "internal_error", "destruction"), (name, reason)
    lot_reasons = {Path(r["path"]).name: r["reason"] for r in doc["lot_reports"]}
    assert {n: EXPECTED[n] for n in lot_reasons} == lot_reasons
    assert len(lot_reasons) >= 20


def test_records_looked_for_among_hostile_files(trust: TrustStore, tmp_path: Path) -> None:
    """A valid report checked against folders of hostile certificates and reports: every record missing."""
    org = init_org_key(tmp_path / "org", "Atelier")
    store = TrustStore.load([CORPUS / "trust"])
    store.add_organisation_key(org.public, "org.pem")
    v = verify_lot_report(sign_lot_report(lots.report(kid=org.kid), org), store, "r.json")
    assert v.ok
    check_records(v, store, [CERT_CORPUS, FILES, tmp_path / "missing"])
    total(v, "records")
    assert {c.problem[0] for c in v.records if c.problem} == {"record_missing"}


# --- fuzzing -------------------------------------------------------------------------------------------

any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, TrustStore]:
    key = init_org_key(tmp_path_factory.mktemp("org") / "org", "Atelier")
    store = TrustStore()
    store.add_organisation_key(key.public, "org.pem")
    return key, store


def _sign_raw(payload: bytes, key: SigningKey) -> bytes:
    header = {"alg": "EdDSA", "typ": TYP_LOT_REPORT, "kid": kid_of(key.public), "jwk": jwk_of(key.public)}
    p = b64url_encode(canonical_json(header))
    b = b64url_encode(payload)
    return json.dumps(
        {"protected": p, "payload": b, "signature": b64url_encode(key.private.sign(f"{p}.{b}".encode()))}
    ).encode()


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[path[0]] = _replace(doc[path[0]], path[1:], value)
    return copy


GOOD = lots.report(kid="00" * 32).to_json()
GOOD_PATHS = _paths(GOOD)


@fuzz(800)
@given(value=json_values, pick=st.integers(0, 10**6))
def test_a_signed_report_with_one_value_changed_is_refused_or_still_true(
    org: tuple[SigningKey, TrustStore], value: Any, pick: int
) -> None:
    key, store = org
    doc = {**GOOD, "organisation": {**GOOD["organisation"], "kid": key.kid}}
    path = GOOD_PATHS[pick % len(GOOD_PATHS)]
    changed = _replace(doc, path, value)
    try:
        payload = canonical_json(changed)
    except CanonicalError:
        return
    v = total(verify_lot_report(_sign_raw(payload, key), store), "mutated")
    if v.ok:  # still a consistent report: then it is exactly what was signed
        assert v.report is not None and canonical_json(v.report.to_json()) == payload
        assert LotReport.from_json(json.loads(payload)) == v.report
    else:
        assert v.reason == "schema_error", v.problems


@fuzz(600)
@given(doc=st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_signed_random_objects_are_schema_errors(
    org: tuple[SigningKey, TrustStore], doc: dict[str, Any]
) -> None:
    key, store = org
    try:
        payload = canonical_json(doc)
    except CanonicalError:
        return
    v = total(verify_lot_report(_sign_raw(payload, key), store), "random_objects")
    assert v.reason == "schema_error"


@fuzz(600)
@given(data=st.binary(max_size=3000))
def test_random_bytes_are_never_a_lot_report(org: tuple[SigningKey, TrustStore], data: bytes) -> None:
    v = total(verify_lot_report(data, org[1]), "bytes")
    assert not v.ok


@pytest.fixture(scope="module")
def good_pdf(org: tuple[SigningKey, TrustStore]) -> tuple[bytes, LotReport]:
    key, _ = org
    r = lots.report(kid=key.kid)
    return render_lot_report(r, "fr", signed=sign_lot_report(r, key)), r


@fuzz(300)
@given(edits=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_pdfs_never_crash_or_pass_as_another_report(
    org: tuple[SigningKey, TrustStore],
    good_pdf: tuple[bytes, LotReport],
    edits: list[tuple[int, int]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pdf, report = good_pdf
    data = bytearray(pdf)
    for at, byte in edits:
        data[at % len(data)] = byte
    path = tmp_path_factory.mktemp("pdf") / "lot.pdf"
    path.write_bytes(bytes(data))
    v = total(verify_lot_file(path, org[1]), "pdf")
    if v.ok:
        assert v.report == report


def test_zz_fuzz_volume() -> None:
    """Run last (by name): the fuzz tests above did generate what they claim."""
    if len(RUNS) < 5:
        pytest.skip("run with the whole file")
    assert sum(RUNS.values()) >= 2000, RUNS
