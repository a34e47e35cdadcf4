"""Property-based fuzzing of the verifier: it never crashes, its JSON is always valid, and it never
accepts a forgery.

More than 10,000 generated inputs per run (envelopes, signed payloads, PDFs built with random
attachment structures and byte-mutated PDFs); ``test_zz_fuzz_volume`` checks the count.  Every verdict
goes through :func:`total`: no ``internal_error`` (a traceback the verifier caught) and a JSON report
that parses back.
"""

from __future__ import annotations

import io
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, TextStringObject

from certs.canonical import CanonicalError, b64url_encode, canonical_json
from certs.cli import report_json
from certs.errors import SchemaError
from certs.jws import parse_envelope
from certs.model import Certificate
from certs.pdf import ATTACHMENT
from certs.verify import Verdict
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, load_json, make_station, resign

RUNS: Counter[str] = Counter()


def fuzz(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


FUZZ = fuzz(1500)


def total(v: Verdict, name: str) -> Verdict:
    """The verdict is a real answer: no caught defect, and its JSON report is valid ASCII JSON."""
    RUNS[name] += 1
    assert v.reason != "internal_error", v.problems
    text = report_json([v], chain=False)
    assert text.isascii()
    doc = json.loads(text)
    assert doc["results"][0]["reason"] == v.reason
    return v


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


def mutate(original: bytes, edits: list[tuple[int, int, str]]) -> bytearray:
    """Replace (r), insert (i) or delete (d) one byte per edit, at positions taken modulo the length."""
    data = bytearray(original)
    for pos, byte, op in edits:
        i = pos % (len(data) + 1)
        if op == "r" and i < len(data):
            data[i] = byte
        elif op == "i":
            data.insert(i, byte)
        elif op == "d" and i < len(data):
            del data[i]
    return data


def _signed_parts(data: bytes) -> tuple[str, str, str]:
    env = parse_envelope(data)
    return env.protected, env.payload, env.signature


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_never_crash_or_pass(station: Station, data: bytes) -> None:
    v = total(station.verifier().verify_envelope(data, "fuzz"), "bytes")
    assert not v.ok and v.problems


@FUZZ
@given(obj=json_values)
def test_random_json_never_crash_or_pass(station: Station, obj: Any) -> None:
    v = total(station.verifier().verify_envelope(json.dumps(obj).encode(), "fuzz"), "json")
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
    v = total(station.verifier().verify_envelope(json.dumps(obj).encode(), "fuzz"), "envelopes")
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
    data = mutate(original, edits)
    v = total(station.verifier().verify_envelope(bytes(data), "fuzz"), "mutated")
    if v.ok:  # only formatting outside the signed members may change (e.g. added whitespace)
        assert _signed_parts(bytes(data)) == _signed_parts(original)


@fuzz(1000)
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
    before = target[where[-1]]
    target[where[-1]] = value
    v = total(
        station.verifier().verify_envelope(
            json.dumps(resign(obj, sorted_json(doc), station.key_dir)).encode(), "f"
        ),
        "signed_payloads",
    )
    if tuple(where) == ("station", "id") and value != before:
        # The station's endorsement binds its key to one station id: another id is refused for that
        # (before any schema check), whatever the new value is.
        assert not v.ok and v.reason in ("unendorsed_key", "schema_error"), v.problems
        return
    try:
        canonical_json(
            doc
        )  # a value canonical JSON cannot hold (an integer past 2**53) is a schema error too
        cert = Certificate.from_dict(doc)
    except (SchemaError, CanonicalError):
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


@fuzz(1000)
@given(doc=st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_signed_random_objects_are_refused(station: Station, good: Path, doc: dict[str, Any]) -> None:
    obj = load_json(good)
    v = total(
        station.verifier().verify_envelope(
            json.dumps(resign(obj, sorted_json(doc), station.key_dir)).encode(), "f"
        ),
        "signed_objects",
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


# --- integers of any length, anywhere --------------------------------------------------------------


@FUZZ
@given(
    digits=st.integers(1, 6000),
    where=st.sampled_from(["top", "header", "protected", "payload"]),
    sign=st.sampled_from(["", "-"]),
)
def test_number_literals_of_any_length(
    station: Station, good: Path, digits: int, where: str, sign: str
) -> None:
    """Python refuses integers of more than 4,300 digits with ValueError: that is a reason, not a crash."""
    number = sign + "7" * digits
    obj = load_json(good)
    marker = '"__N__"'
    if where == "top":
        text = json.dumps({**obj, "x": "__N__"})
    elif where == "header":
        text = json.dumps({**obj, "header": {"endorsement": "__N__"}})
    elif where == "protected":
        raw = ('{"alg":"EdDSA","kid":' + number + ',"typ":"tabula-certificate+json"}').encode()
        text = json.dumps({**obj, "protected": b64url_encode(raw)})
    else:
        doc = json.loads(parse_envelope(good.read_bytes()).payload_bytes)
        raw = canonical_json(doc).replace(b'"sequence":', b'"sequence":' + number.encode() + b',"x":')
        text = json.dumps(resign(obj, raw, station.key_dir))
    v = total(station.verifier().verify_envelope(text.replace(marker, number).encode(), "n"), "numbers")
    assert not v.ok


# --- signed headers with random members -------------------------------------------------------------


@fuzz(1000)
@given(extra=st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=3))
def test_protected_header_members_are_never_ignored(
    station: Station, good: Path, extra: dict[str, Any]
) -> None:
    """A member the verifier does not know in the protected header is refused, even when validly signed."""
    from certs.canonical import b64url_decode
    from certs.keys import load_station_key

    obj = load_json(good)
    header = json.loads(b64url_decode(obj["protected"]))
    header.update(extra)
    protected = b64url_encode(sorted_json(header))
    key = load_station_key(station.key_dir)
    sig = key.private.sign(f"{protected}.{obj['payload']}".encode())
    forged = dict(obj, protected=protected, signature=b64url_encode(sig))
    v = total(station.verifier().verify_envelope(json.dumps(forged).encode(), "h"), "headers")
    known = {"alg", "typ", "kid", "jwk", "endorsement"}
    if not set(extra) <= known:
        assert not v.ok and v.reason in ("malformed", "unsupported_algorithm"), v.problems


# --- PDFs -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdf_parts(station: Station) -> dict[str, bytes]:
    good = station.issue(records.verified())
    bad = station.issue(records.failed_verification())
    reader = PdfReader(good.pdf_path)
    w = PdfWriter()
    for p in reader.pages:
        w.add_page(p)
    out = io.BytesIO()
    w.write(out)
    return {
        "pages": out.getvalue(),
        "pdf": good.pdf_path.read_bytes(),
        "cert": good.json_path.read_bytes(),
        "failure": bad.json_path.read_bytes(),
    }


_FILTERS = ["none", "flate", "bad-flate", "JBIG2Decode", "ASCIIHexDecode", "LZWDecode", "DCTDecode"]
_contents = st.sampled_from(["cert", "failure", "garbage", "empty"])
_entry = st.fixed_dictionaries(
    {
        "name": st.sampled_from([ATTACHMENT, ATTACHMENT, "other.json", ""]),
        "f": st.one_of(st.none(), _contents),
        "uf": st.sampled_from(["absent", "same-object", "cert", "failure"]),
        "filter": st.sampled_from(_FILTERS),
    }
)
_structure = st.fixed_dictionaries(
    {
        "entries": st.lists(_entry, min_size=0, max_size=3),
        "kids": st.integers(0, 2),
        "annotations": st.integers(0, 2),
        "orphans": st.integers(0, 1),
    }
)


def _stream(w: PdfWriter, data: bytes, filt: str) -> Any:
    s = DecodedStreamObject()
    s.set_data(data)
    if filt == "flate":
        s._data = zlib.compress(data)
        s[NameObject("/Filter")] = NameObject("/FlateDecode")
    elif filt == "bad-flate":
        s._data = b"\x78\x9c" + data[:40]
        s[NameObject("/Filter")] = NameObject("/FlateDecode")
    elif filt != "none":
        s[NameObject("/Filter")] = NameObject("/" + filt)
    s[NameObject("/Type")] = NameObject("/EmbeddedFile")
    return w._add_object(s)


def _spec(w: PdfWriter, e: dict[str, Any], parts: dict[str, bytes]) -> Any:
    def content(kind: str) -> bytes:
        return {"cert": parts["cert"], "failure": parts["failure"], "garbage": b"\x00garbage", "empty": b""}[
            kind
        ]

    ef = DictionaryObject()
    f_stream = _stream(w, content(e["f"]), e["filter"]) if e["f"] is not None else None
    if f_stream is not None:
        ef[NameObject("/F")] = f_stream
    if e["uf"] == "same-object" and f_stream is not None:
        ef[NameObject("/UF")] = f_stream
    elif e["uf"] in ("cert", "failure"):
        ef[NameObject("/UF")] = _stream(w, content(e["uf"]), e["filter"])
    spec = DictionaryObject(
        {NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject(e["name"])}
    )
    if ef:
        spec[NameObject("/EF")] = ef
    return w._add_object(spec)


def _build_pdf(parts: dict[str, bytes], s: dict[str, Any]) -> bytes:
    w = PdfWriter(clone_from=PdfReader(io.BytesIO(parts["pages"])))
    names = ArrayObject()
    for e in s["entries"]:
        names += [TextStringObject(e["name"]), _spec(w, e, parts)]
    if s["entries"]:
        tree: Any = w._add_object(DictionaryObject({NameObject("/Names"): names}))
        for _ in range(s["kids"]):
            tree = w._add_object(DictionaryObject({NameObject("/Kids"): ArrayObject([tree])}))
        w._root_object[NameObject("/Names")] = w._add_object(
            DictionaryObject({NameObject("/EmbeddedFiles"): tree})
        )
    annots = ArrayObject()
    for _ in range(s["annotations"]):
        spec = _spec(w, {"name": "a.json", "f": "failure", "uf": "absent", "filter": "none"}, parts)
        annots.append(
            w._add_object(
                DictionaryObject(
                    {
                        NameObject("/Type"): NameObject("/Annot"),
                        NameObject("/Subtype"): NameObject("/FileAttachment"),
                        NameObject("/Rect"): ArrayObject([]),
                        NameObject("/FS"): spec,
                    }
                )
            )
        )
    if annots:
        w.pages[0][NameObject("/Annots")] = annots
    for _ in range(s["orphans"]):
        _spec(w, {"name": "o.json", "f": "failure", "uf": "absent", "filter": "none"}, parts)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _acceptable(s: dict[str, Any]) -> bool:
    """The only structure that may verify: one entry, the certificate in /EF/F (and /UF the same or
    identical), stored plainly or with Flate, and nothing else embedded anywhere."""
    if len(s["entries"]) != 1 or s["kids"] or s["annotations"] or s["orphans"]:
        return False
    e = s["entries"][0]
    return (
        e["name"] == ATTACHMENT
        and e["f"] == "cert"
        and e["uf"] in ("absent", "same-object", "cert")
        and e["filter"] in ("none", "flate")
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-pdf")


@fuzz(1500)
@given(structure=_structure)
def test_pdf_attachment_structures(
    station: Station, pdf_parts: dict[str, bytes], scratch: Path, structure: dict[str, Any]
) -> None:
    """Only a PDF with exactly one embedded record, the certificate, verifies; nothing crashes."""
    path = scratch / "c.pdf"
    path.write_bytes(_build_pdf(pdf_parts, structure))
    v = total(station.verifier().verify_file(path), "pdf_structures")
    assert v.ok == _acceptable(structure), (structure, v.problems)


@fuzz(700)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10**7), st.integers(0, 255), st.sampled_from("rid")), min_size=1, max_size=6
    )
)
def test_mutated_pdfs(
    station: Station, pdf_parts: dict[str, bytes], scratch: Path, edits: list[tuple[int, int, str]]
) -> None:
    data = mutate(pdf_parts["pdf"], edits)
    path = scratch / "m.pdf"
    path.write_bytes(bytes(data))
    v = total(station.verifier().verify_file(path), "pdf_mutations")
    if v.ok:  # the page and the record still agree: the signed record is intact
        assert v.certificate is not None and v.certificate.media.serial == "WD-WCC4N1234567"


EXPECTED_RUNS = {
    "bytes": 1500,
    "json": 1500,
    "envelopes": 1500,
    "mutated": 1500,
    "signed_payloads": 1000,
    "signed_objects": 1000,
    "numbers": 1500,
    "headers": 1000,
    "pdf_structures": 1500,
    "pdf_mutations": 700,
}


def test_zz_fuzz_volume() -> None:
    """Runs last in this file: more than 10,000 generated inputs went through the verifier."""
    if set(RUNS) != set(EXPECTED_RUNS):
        pytest.skip("only part of the fuzz tests ran")
    assert sum(RUNS.values()) >= 10_000, RUNS
