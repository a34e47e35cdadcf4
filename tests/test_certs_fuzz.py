"""Property-based fuzzing of the certificate parser: it never crashes and never accepts a forgery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certs.canonical import b64url_encode
from certs.errors import SchemaError
from certs.jws import parse_envelope
from certs.model import Certificate
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, load_json, make_station, resign

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# text includes lone surrogates: JSON can carry them as "\ud800" escapes
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
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    return make_station(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def good(station: Station) -> Path:
    return station.issue(records.verified()).json_path


def sorted_json(doc: Any) -> bytes:
    """Canonical layout without canonical_json's value checks, so out-of-range values reach the verifier."""
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # lone surrogates travel as \ud800 escapes
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signed_parts(data: bytes) -> tuple[str, str, str]:
    env = parse_envelope(data)
    return env.protected, env.payload, env.signature


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash_or_pass(station: Station, data: bytes) -> None:
    v = station.verifier().verify_envelope(data, "fuzz")
    assert not v.ok and v.problems


@FUZZ
@given(obj=json_values)
def test_random_json_never_crash_or_pass(station: Station, obj: Any) -> None:
    v = station.verifier().verify_envelope(json.dumps(obj).encode(), "fuzz")
    assert not v.ok and v.problems


@FUZZ
@given(
    protected=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=120
    ),
    payload=st.text(max_size=120),
    signature=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=100
    ),
)
def test_random_envelopes_never_crash_or_pass(
    station: Station, protected: str, payload: str, signature: str
) -> None:
    obj = {"protected": protected, "payload": payload, "signature": signature}
    v = station.verifier().verify_envelope(json.dumps(obj).encode(), "fuzz")
    assert not v.ok and v.problems


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from("rid")), min_size=1, max_size=4
    )
)
def test_mutated_files_are_never_accepted_as_different_content(
    station: Station, good: Path, edits: list[tuple[int, int, str]]
) -> None:
    original = good.read_bytes()
    data = bytearray(original)
    for pos, byte, op in edits:
        i = pos % (len(data) + 1)
        if op == "r" and i < len(data):
            data[i] = byte
        elif op == "i":
            data.insert(i, byte)
        elif op == "d" and i < len(data):
            del data[i]
    v = station.verifier().verify_envelope(bytes(data), "fuzz")
    if v.ok:  # only formatting outside the signed members may change (e.g. added whitespace)
        assert _signed_parts(bytes(data)) == _signed_parts(original)


@FUZZ
@given(value=json_values, pick=st.integers(0, 10**6))
def test_signed_garbage_payloads_are_schema_errors(
    station: Station, good: Path, value: Any, pick: int
) -> None:
    """Even with the station's real key, a payload that is not a valid certificate is never accepted."""
    obj = load_json(good)
    doc = json.loads(parse_envelope(good.read_bytes()).payload_bytes)
    paths = list(_paths(doc))
    where = paths[pick % len(paths)]
    target = doc
    for p in where[:-1]:
        target = target[p]
    target[where[-1]] = value
    v = station.verifier().verify_envelope(
        json.dumps(resign(obj, sorted_json(doc), station.key_dir)).encode(), "f"
    )
    try:
        cert = Certificate.from_dict(doc)
    except SchemaError:
        assert not v.ok and v.reason == "schema_error"
        return
    # still a valid record: the verdict must agree with the model's own judgement
    assert v.ok == cert.success


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*path, k)
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*path, i)
            yield from _paths(v, (*path, i))


@FUZZ
@given(doc=st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_signed_random_objects_are_refused(station: Station, good: Path, doc: dict[str, Any]) -> None:
    obj = load_json(good)
    v = station.verifier().verify_envelope(
        json.dumps(resign(obj, sorted_json(doc), station.key_dir)).encode(), "f"
    )
    assert not v.ok and v.reason == "schema_error"


def test_payload_that_is_not_json_but_validly_signed(station: Station, good: Path) -> None:
    obj = load_json(good)
    v = station.verifier().verify_envelope(
        json.dumps(resign(obj, b"\xff\xfe not json", station.key_dir)).encode(), "f"
    )
    assert v.reason == "schema_error" and "not valid JSON" in v.problems[0][1]
    bad = resign(obj, b'{"a":"\\ud800"}', station.key_dir)
    v = station.verifier().verify_envelope(json.dumps(bad).encode(), "f")
    assert v.reason == "schema_error" and "invalid code point" in v.problems[0][1]
    forged = dict(obj, payload=b64url_encode(b"{}"))
    assert station.verifier().verify_envelope(json.dumps(forged).encode(), "f").reason == "bad_signature"
