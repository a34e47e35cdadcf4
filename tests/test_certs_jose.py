"""Two independent JOSE libraries verify what Tabula signs: jwcrypto and joserfc (the ones certs/README.md names).

Also: the verifier accepts RFC 9864's fully-specified ``alg: "Ed25519"``, which joserfc can produce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from certs.canonical import b64url_decode
from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign
from certs.keys import load_org_key, load_station_key
from certs.revocation import revoke
from tests.fixtures.certs import records
from tests.fixtures.certs.helpers import Station, legacy_form, load_json, make_station, payload_of

# joserfc warns that RFC 9864 deprecates "EdDSA": Tabula still signs with it, because verifiers
# already in auditors' hands (older Tabula, older JOSE libraries) know only that name
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    return make_station(tmp_path_factory.mktemp("jose"))


def _is_object(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")


def registry(alg: str = "EdDSA") -> joserfc_jws.JWSRegistry:
    """joserfc refuses header members it does not know and headers over 512 bytes unless told."""
    reg = joserfc_jws.JWSRegistry(
        header_registry={
            "endorsement": HeaderParameter("Tabula: the organisation's endorsement", _is_object)
        },
        algorithms=[alg],
    )
    reg.max_header_length = 8192
    return reg


def signed_files(station: Station) -> list[tuple[str, dict[str, Any], bytes]]:
    """(what, flattened JWS, PEM of the key that signed it)."""
    cert = station.issue(records.verified())
    failure = station.issue(records.failed_verification())
    station_pem = (station.key_dir / "station.pub.pem").read_bytes()
    org_pem = (station.root / "org" / "org.pub.pem").read_bytes()
    org = load_org_key(station.root / "org")
    revocations = revoke(org, "ab" * 32, reason="superseded")
    return [
        ("certificate", load_json(cert.json_path), station_pem),
        ("failure report", load_json(failure.json_path), station_pem),
        ("legacy certificate", legacy_form(load_json(cert.json_path), station.key_dir), station_pem),
        ("endorsement", load_json(station.key_dir / "endorsement.json"), org_pem),
        ("revocation list", json.loads(envelope_bytes(revocations)), org_pem),
    ]


def test_jwcrypto_verifies_everything_tabula_signs(station: Station) -> None:
    for what, obj, pem in signed_files(station):
        token = jwcrypto_jws.JWS()
        token.deserialize(json.dumps(obj))
        token.verify(jwcrypto_jwk.JWK.from_pem(pem), alg="EdDSA")
        assert token.payload == b64url_decode(obj["payload"]), what
        org_pem = (station.root / "org" / "org.pub.pem").read_bytes()
        wrong = (station.key_dir / "station.pub.pem").read_bytes() if pem == org_pem else org_pem
        with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
            jwcrypto_jws.JWS().deserialize(json.dumps(obj), jwcrypto_jwk.JWK.from_pem(wrong))


def test_joserfc_verifies_everything_tabula_signs(station: Station) -> None:
    for what, obj, pem in signed_files(station):
        result = joserfc_jws.deserialize_json(obj, OKPKey.import_key(pem), registry=registry())
        assert result.payload == b64url_decode(obj["payload"]), what
        assert result.headers()["kid"] == json.loads(b64url_decode(obj["protected"]))["kid"]


def test_both_libraries_refuse_a_changed_payload(station: Station) -> None:
    obj = load_json(station.issue(records.verified()).json_path)
    pem = (station.key_dir / "station.pub.pem").read_bytes()
    other = load_json(station.issue(records.failed_verification()).json_path)
    forged = dict(obj, payload=other["payload"])
    with pytest.raises(jwcrypto_jws.InvalidJWSSignature):
        jwcrypto_jws.JWS().deserialize(json.dumps(forged), jwcrypto_jwk.JWK.from_pem(pem))
    with pytest.raises(Exception, match="signature"):
        joserfc_jws.deserialize_json(forged, OKPKey.import_key(pem), registry=registry())


def test_fully_specified_ed25519_alg_is_accepted(station: Station, tmp_path: Path) -> None:
    """RFC 9864 'Ed25519': signed by Tabula's signer and by joserfc, both verify."""
    issued = station.issue(records.verified())
    doc = payload_of(issued.json_path)
    key = load_station_key(station.key_dir)
    header = json.loads(b64url_decode(load_json(issued.json_path)["protected"]))
    env = sign(doc, key.private, TYP_CERTIFICATE, endorsement=header["endorsement"], alg="Ed25519")
    assert station.verifier().verify_envelope(envelope_bytes(env), "ed25519").ok
    # the same bytes signed by joserfc with alg Ed25519
    private = OKPKey.import_key((station.key_dir / "station.key").read_bytes())
    protected = {**header, "alg": "Ed25519"}
    body = b64url_decode(env.payload)
    made = joserfc_jws.serialize_json({"protected": protected}, body, private, registry=registry("Ed25519"))
    v = station.verifier().verify_envelope(json.dumps(made).encode(), "joserfc")
    # joserfc does not write canonical protected headers, and nothing requires it to
    assert v.ok, v.problems
    checked = joserfc_jws.deserialize_json(
        made,
        OKPKey.import_key((station.key_dir / "station.pub.pem").read_bytes()),
        registry=registry("Ed25519"),
    )
    assert checked.payload == body
