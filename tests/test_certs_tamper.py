"""Tamper matrix: every change to a signed certificate is rejected, with the right reason."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter

from certs.canonical import b64url_decode, b64url_encode, canonical_json
from certs.jws import jwk_of, kid_of
from certs.keys import init_station_key, load_station_key
from certs.pdf import ATTACHMENT
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, legacy_form, load_json, make_station, resign


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    return make_station(tmp_path_factory.mktemp("tamper"))


@pytest.fixture(scope="module")
def issued(station: Station) -> tuple[Path, Path]:
    i = station.issue(records.verified())
    j = station.issue(records.failed_verification())
    return i.json_path, j.json_path


def check(station: Station, obj: Any) -> Verdict:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return station.verifier().verify_envelope(data, "<test>")


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        if not node:
            yield path, node
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))
    else:
        yield path, node


def changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x" if value else "x"
    if value is None:
        return "x"
    if isinstance(value, list):
        return [0]
    raise AssertionError(value)


def set_path(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def payload(obj: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(b64url_decode(obj["payload"]))
    assert isinstance(data, dict)
    return data


def test_untouched_file_verifies(station: Station, issued: tuple[Path, Path]) -> None:
    assert check(station, issued[0].read_bytes()).ok


def test_every_field_changed_breaks_the_signature(station: Station, issued: tuple[Path, Path]) -> None:
    for path in issued:
        obj = load_json(path)
        doc = payload(obj)
        all_leaves = list(leaves(doc))
        assert len(all_leaves) > 80  # the matrix really covers the whole record
        for where, value in all_leaves:
            tampered = copy.deepcopy(doc)
            set_path(tampered, where, changed(value))
            forged = dict(obj, payload=b64url_encode(canonical_json(tampered)))
            v = check(station, forged)
            assert not v.ok and v.reason == "bad_signature", (where, v.problems)


def test_field_removed_or_added_breaks_the_signature(station: Station, issued: tuple[Path, Path]) -> None:
    obj = load_json(issued[0])
    doc = payload(obj)
    for key in list(doc):
        tampered = {k: v for k, v in doc.items() if k != key}
        v = check(station, dict(obj, payload=b64url_encode(canonical_json(tampered))))
        assert v.reason == "bad_signature", key
    v = check(station, dict(obj, payload=b64url_encode(canonical_json({**doc, "note": "x"}))))
    assert v.reason == "bad_signature"


def test_failure_report_relabelled_as_success_is_rejected(
    station: Station, issued: tuple[Path, Path]
) -> None:
    obj = load_json(issued[1])
    doc = payload(obj)
    doc["kind"] = "certificate"
    doc["result"] = {"success": True, "outcome": "verified", "reasons": []}
    forged = dict(obj, payload=b64url_encode(canonical_json(doc)))
    assert check(station, forged).reason == "bad_signature"
    # even the station's own key cannot sign a success for failed facts
    v = check(station, resign(obj, canonical_json(doc), station.key_dir))
    assert v.reason == "schema_error" and "not a successful erasure" in v.problems[0][1]


def test_signature_swapped_between_certificates(station: Station, issued: tuple[Path, Path]) -> None:
    a, b = load_json(issued[0]), load_json(issued[1])
    assert check(station, dict(a, signature=b["signature"])).reason == "bad_signature"
    assert check(station, dict(a, payload=b["payload"])).reason == "bad_signature"


def test_key_swapped_in_header(station: Station, issued: tuple[Path, Path], tmp_path: Path) -> None:
    obj = load_json(issued[0])
    other = init_station_key(tmp_path / "k", "bench-1").public
    header = json.loads(b64url_decode(obj["protected"]))
    header.update(kid=kid_of(other), jwk=jwk_of(other))
    v = check(station, dict(obj, protected=b64url_encode(canonical_json(header))))
    assert v.reason == "bad_signature"
    header["kid"] = "00" * 32  # kid no longer names the embedded key
    v = check(station, dict(obj, protected=b64url_encode(canonical_json(header))))
    assert v.reason == "malformed" and "kid" in v.problems[0][1]


def test_resigned_by_an_attacker(station: Station, issued: tuple[Path, Path], tmp_path: Path) -> None:
    obj = load_json(issued[0])
    init_station_key(tmp_path / "evil", "bench-1")
    doc = payload(obj)
    doc["media"]["serial"] = "FORGED"
    v = check(station, resign(obj, canonical_json(doc), tmp_path / "evil", endorsement=False))
    assert v.reason == "unknown_key"
    # stealing the real station's endorsement does not help: it endorses another key
    v = check(station, resign(obj, canonical_json(doc), tmp_path / "evil"))
    assert v.reason == "unendorsed_key"


def test_payload_naming_another_key_is_rejected(
    station: Station, issued: tuple[Path, Path], tmp_path: Path
) -> None:
    # a trusted key signs a payload that claims to come from another station key
    obj = load_json(issued[0])
    init_station_key(tmp_path / "k2", "bench-1")
    (tmp_path / "trust2").mkdir()
    (tmp_path / "trust2" / "k2.pem").write_bytes((tmp_path / "k2" / "station.pub.pem").read_bytes())
    forged = resign(
        {k: v for k, v in obj.items() if k != "header"}, b64url_decode(obj["payload"]), tmp_path / "k2"
    )
    v = Verifier(TrustStore.load([tmp_path / "trust2"])).verify_envelope(json.dumps(forged).encode(), "x")
    assert v.reason == "schema_error" and "signed by" in v.problems[0][1]


def test_payload_reencoded(station: Station, issued: tuple[Path, Path]) -> None:
    obj = load_json(issued[0])
    doc = payload(obj)
    variants = [
        json.dumps(doc).encode(),  # spaces
        json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(),  # \u escapes
        json.dumps(dict(reversed(list(doc.items()))), separators=(",", ":"), ensure_ascii=False).encode(),
        canonical_json(doc) + b"\n",
    ]
    for raw in variants:
        assert raw != b64url_decode(obj["payload"])
        assert check(station, dict(obj, payload=b64url_encode(raw))).reason == "bad_signature"
        # re-signed by the real key, a non-canonical payload is still refused
        v = check(station, resign(obj, raw, station.key_dir))
        assert v.reason == "schema_error" and "canonical" in v.problems[0][1]


def test_protected_header_reencoded(station: Station, issued: tuple[Path, Path]) -> None:
    obj = load_json(issued[0])
    header = json.loads(b64url_decode(obj["protected"]))
    v = check(station, dict(obj, protected=b64url_encode(json.dumps(header, indent=1).encode())))
    assert v.reason == "bad_signature"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o, h: h.update(alg="none"), "unsupported_algorithm"),
        (lambda o, h: h.update(alg="HS256"), "unsupported_algorithm"),
        (lambda o, h: h.update(crit=["exp"]), "malformed"),
        (lambda o, h: h.update(typ="tabula-endorsement+json"), "malformed"),
        (lambda o, h: h.pop("jwk"), "malformed"),
        (lambda o, h: h["jwk"].update(crv="X25519"), "unsupported_algorithm"),
    ],
)
def test_header_changes(station: Station, issued: tuple[Path, Path], mutate: Any, reason: str) -> None:
    obj = load_json(issued[0])
    header = json.loads(b64url_decode(obj["protected"]))
    mutate(obj, header)
    v = check(station, dict(obj, protected=b64url_encode(canonical_json(header))))
    assert v.reason == reason, v.problems


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o.update(payload=o["payload"] + "=" * (-len(o["payload"]) % 4 or 4)), "malformed"),
        (lambda o: o.update(signature=o["signature"].replace("_", "/").replace("-", "+") + "A"), "malformed"),
        (lambda o: o.update(signature=o["signature"][:-4]), "malformed"),
        (lambda o: o.update(extra="x"), "malformed"),
        (lambda o: o.pop("signature"), "malformed"),
        (lambda o: o.update(header={"kid": "x"}), "malformed"),
        # a protected endorsement is there: an unprotected one too is refused
        (lambda o: o.update(header={"endorsement": {"payload": "x"}}), "malformed"),
        (lambda o: o.update(header={"kind": "certificate"}), "malformed"),
        (lambda o: o.update(payload=123), "malformed"),
    ],
)
def test_envelope_changes(station: Station, issued: tuple[Path, Path], mutate: Any, reason: str) -> None:
    obj = load_json(issued[0])
    mutate(obj)
    v = check(station, obj)
    assert not v.ok and v.reason == reason, v.problems


def test_non_canonical_base64_is_rejected(station: Station, issued: tuple[Path, Path]) -> None:
    obj = load_json(issued[0])
    sig = obj["signature"]
    # an 86-char base64url string carries 4 spare bits: set one, same bytes under a lax decoder
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(sig) == 86 and alphabet.index(sig[-1]) & 0b1111 == 0
    v = check(station, dict(obj, signature=sig[:-1] + alphabet[alphabet.index(sig[-1]) | 1]))
    assert v.reason == "malformed" and "canonical" in v.problems[0][1]


def test_truncated_files(station: Station, issued: tuple[Path, Path]) -> None:
    data = issued[0].read_bytes()
    for n in list(range(0, 200, 7)) + list(range(200, len(data) - 1, max(1, len(data) // 60))):
        v = check(station, data[:n])
        assert not v.ok and v.reason == "malformed", n


def test_endorsement_file_is_not_a_certificate(station: Station) -> None:
    v = check(station, (station.key_dir / "endorsement.json").read_bytes())
    assert v.reason == "malformed" and "not a tabula-certificate" in v.problems[0][1]


def _with_attachment(pdf: bytes, data: bytes | None) -> bytes:
    reader = PdfReader(io.BytesIO(pdf))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    if data is not None:
        writer.add_attachment(ATTACHMENT, data)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_tampering(station: Station, issued: tuple[Path, Path], tmp_path: Path) -> None:
    pdf_path = issued[0].with_suffix(".pdf")
    assert station.verifier().verify_file(pdf_path).ok
    obj = load_json(issued[0])
    doc = payload(obj)
    doc["media"]["serial"] = "OTHER-DRIVE"
    forged = envelope_bytes_from(dict(obj, payload=b64url_encode(canonical_json(doc))))
    cases = {
        "swapped.pdf": (_with_attachment(pdf_path.read_bytes(), forged), "bad_signature"),
        "failure.pdf": (_with_attachment(pdf_path.read_bytes(), issued[1].read_bytes()), "failure_report"),
        "none.pdf": (_with_attachment(pdf_path.read_bytes(), None), "pdf_error"),
        "truncated.pdf": (pdf_path.read_bytes()[:2000], "pdf_error"),
    }
    for name, (data, reason) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        v = station.verifier().verify_file(p)
        assert not v.ok and v.reason == reason, (name, v.problems)


def envelope_bytes_from(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def test_envelope_file_whitespace_is_not_signed(station: Station, issued: tuple[Path, Path]) -> None:
    # reformatting the envelope's JSON (not the payload) keeps it valid: only the base64 members are signed
    obj = load_json(issued[0])
    assert check(station, json.dumps(obj, separators=(",", ":")).encode()).ok
    assert load_station_key(station.key_dir).kid == json.loads(b64url_decode(obj["protected"]))["kid"]


def test_tampered_endorsement_is_not_served_from_the_cache(
    station: Station, issued: tuple[Path, Path]
) -> None:
    verifier = station.verifier()
    obj = legacy_form(load_json(issued[0]), station.key_dir)  # the endorsement is not signed by the station
    assert verifier.verify_envelope(json.dumps(obj).encode(), "good").ok  # caches the endorsement
    endorsement = dict(obj["header"]["endorsement"])
    body = json.loads(b64url_decode(endorsement["payload"]))
    body["organisation"] = "Someone else"
    endorsement["payload"] = b64url_encode(canonical_json(body))  # same signature, other content
    forged = dict(obj, header={"endorsement": endorsement})
    v = verifier.verify_envelope(json.dumps(forged).encode(), "forged")
    assert v.reason == "unendorsed_key" and "invalid" in v.problems[0][1]


def test_protected_endorsement_cannot_be_swapped(station: Station, issued: tuple[Path, Path]) -> None:
    """The endorsement a certificate claims is covered by the station's signature."""
    obj = load_json(issued[0])
    header = json.loads(b64url_decode(obj["protected"]))
    assert "endorsement" in header and "header" not in obj
    body = json.loads(b64url_decode(header["endorsement"]["payload"]))
    body["organisation"] = "Someone else"
    header["endorsement"]["payload"] = b64url_encode(canonical_json(body))
    v = check(station, dict(obj, protected=b64url_encode(canonical_json(header))))
    assert v.reason == "bad_signature"
    header.pop("endorsement")  # dropping it breaks the signature too
    v = check(station, dict(obj, protected=b64url_encode(canonical_json(header))))
    assert v.reason == "bad_signature"


def test_legacy_unprotected_endorsement_still_verifies(station: Station, issued: tuple[Path, Path]) -> None:
    legacy = legacy_form(load_json(issued[0]), station.key_dir)
    assert set(legacy) == {"protected", "payload", "signature", "header"}
    assert check(station, legacy).ok
    # nothing but the endorsement may be unprotected, even on a legacy certificate
    planted = dict(legacy, header={**legacy["header"], "kind": "certificate"})
    assert check(station, planted).reason == "malformed"
