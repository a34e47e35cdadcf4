"""RFC 7515 JWS, flattened JSON serialization, Ed25519 only (RFC 8037 ``EdDSA``, RFC 9864 ``Ed25519``).

A signed file is ``{"protected": B64(header), "payload": B64(canonical JSON), "signature": B64(sig)}``
(base64url without padding).

The protected header is ``{"alg": "EdDSA", "typ": ..., "kid": ..., "jwk": {...}}`` where ``jwk`` is the
signer's public key (RFC 8037 OKP) and ``kid`` is **the lowercase hex SHA-256 of the public key's
SubjectPublicKeyInfo DER** (44 bytes for Ed25519), i.e. what
``openssl pkey -pubin -in pub.pem -outform DER | sha256sum`` prints.  The embedded key only lets a
verifier check integrity; *trust* comes from the trust store (see :mod:`certs.trust`).

A certificate's protected header (and a station's chain head's) may also carry ``"endorsement"``: the
organisation's endorsement of the station key (itself a flattened JWS object), so the station's signature covers which endorsement
it claims.  Certificates issued before that carried it in the unprotected header
(``"header": {"endorsement": ...}``); that legacy form is still read, and nothing else may be
unprotected.  A file with both forms is refused.

Signing uses ``alg: "EdDSA"`` (RFC 8037), which every JOSE library that supports Ed25519 reads;
verification also accepts the fully-specified ``"Ed25519"`` of RFC 9864.  Both mean the same
algorithm here, since the ``jwk`` must be an Ed25519 key.

Ed25519 signs ``ASCII(protected || "." || payload)``.  The hash that links certificates in a station's
chain (and that the PDF's QR code shows) is the SHA-256 of the compact form
``protected "." payload "." signature``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certs.canonical import b64url_decode, b64url_encode, canonical_json, parse_json, shown
from certs.errors import BadSignature, MalformedEnvelope, TooLarge, UnsupportedAlgorithm

TYP_CERTIFICATE = "tabula-certificate+json"
TYP_ENDORSEMENT = "tabula-endorsement+json"
TYP_REVOCATION = "tabula-revocation+json"
TYP_TREE_HEAD = "tabula-tree-head+json"  # the hub's signed tree heads (certs/tlog.py)
TYP_CHAIN_HEAD = "tabula-chain-head+json"  # a station's signed chain heads (certs/chainhead.py)
TYP_DESTRUCTION = (
    "tabula-destruction+json"  # a drive destroyed because its erasure failed (certs/destruction.py)
)
TYP_LOT_REPORT = "tabula-lot-report+json"  # an organisation's signed lot report (certs/lotreport.py)
TYPES = (
    TYP_CERTIFICATE,
    TYP_ENDORSEMENT,
    TYP_REVOCATION,
    TYP_TREE_HEAD,
    TYP_CHAIN_HEAD,
    TYP_DESTRUCTION,
    TYP_LOT_REPORT,
)
#: Signed records a station numbers in its chain.
CHAINED_TYPES = (TYP_CERTIFICATE, TYP_DESTRUCTION)
#: Types whose protected header may carry the station key's endorsement.
ENDORSED_TYPES = (*CHAINED_TYPES, TYP_CHAIN_HEAD)
#: ``alg`` values accepted: RFC 8037's ``EdDSA`` (what Tabula signs with) and RFC 9864's ``Ed25519``.
ALGORITHMS = ("EdDSA", "Ed25519")
SIGNING_ALGORITHM = "EdDSA"

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING }
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")

MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEADER_KEYS = frozenset({"alg", "typ", "kid", "jwk"})
_CERTIFICATE_HEADER_KEYS = _HEADER_KEYS | {"endorsement"}


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def kid_of_raw(raw: bytes) -> str:
    return hashlib.sha256(SPKI_PREFIX + raw).hexdigest()


def kid_of(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the key's SPKI DER: the fingerprint used as ``kid`` everywhere."""
    return kid_of_raw(raw_public(key))


def jwk_of(key: Ed25519PublicKey) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw_public(key))}


@lru_cache(maxsize=4096)
def _public_from_x(x: str) -> tuple[Ed25519PublicKey, str]:
    raw = b64url_decode(x, "jwk.x")
    if len(raw) != 32:
        raise MalformedEnvelope("jwk.x is not a 32-byte Ed25519 public key")
    try:
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as e:
        raise MalformedEnvelope(f"jwk.x is not an Ed25519 public key: {e}") from e
    return key, kid_of_raw(raw)


def public_from_jwk(jwk: Any) -> tuple[Ed25519PublicKey, str]:
    """The public key and its kid from an RFC 8037 JWK (cached: thousands of certificates share a key)."""
    if not isinstance(jwk, dict) or set(jwk) != {"kty", "crv", "x"}:
        raise MalformedEnvelope("jwk must be exactly {kty, crv, x}")
    if jwk["kty"] != "OKP" or jwk["crv"] != "Ed25519":
        raise UnsupportedAlgorithm(f"key type {shown(jwk['kty'])}/{shown(jwk['crv'])} is not OKP/Ed25519")
    if not isinstance(jwk["x"], str):
        raise MalformedEnvelope("jwk.x must be a string")
    return _public_from_x(jwk["x"])


@dataclass(frozen=True)
class Envelope:
    """A parsed (not yet verified) flattened JWS."""

    protected: str
    payload: str
    signature: str
    header: dict[str, Any]
    unprotected: dict[str, Any]
    payload_bytes: bytes
    signature_bytes: bytes
    key: Ed25519PublicKey

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def typ(self) -> str:
        return str(self.header["typ"])

    @property
    def endorsement(self) -> Any:
        """The endorsement this envelope carries: protected (signed by the station) or legacy unprotected."""
        return self.header.get("endorsement", self.unprotected.get("endorsement"))

    @property
    def endorsement_protected(self) -> bool:
        return "endorsement" in self.header

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected}.{self.payload}".encode("ascii")

    @property
    def compact(self) -> str:
        return f"{self.protected}.{self.payload}.{self.signature}"

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the compact serialization: the certificate's hash in the chain and QR code."""
        return hashlib.sha256(self.compact.encode("ascii")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "protected": self.protected,
            "payload": self.payload,
            "signature": self.signature,
        }
        if self.unprotected:
            out["header"] = self.unprotected
        return out

    def verify_signature(self) -> None:
        """Check the signature with the key named in the header (integrity only, not trust)."""
        try:
            self.key.verify(self.signature_bytes, self.signing_input)
        except InvalidSignature as e:
            raise BadSignature("the signature does not match the signed content") from e


def sign(
    payload: dict[str, Any],
    key: Ed25519PrivateKey,
    typ: str,
    unprotected: dict[str, Any] | None = None,
    *,
    endorsement: dict[str, Any] | None = None,
    alg: str = SIGNING_ALGORITHM,
) -> Envelope:
    """Sign ``payload``; ``endorsement`` (a flattened JWS object) goes into the protected header.

    ``unprotected`` exists only to build legacy-format files in tests.
    """
    pub = key.public_key()
    header: dict[str, Any] = {"alg": alg, "typ": typ, "kid": kid_of(pub), "jwk": jwk_of(pub)}
    if endorsement is not None:
        header["endorsement"] = endorsement
    protected = b64url_encode(canonical_json(header))
    body = canonical_json(payload)
    enc_payload = b64url_encode(body)
    sig = key.sign(f"{protected}.{enc_payload}".encode("ascii"))
    return Envelope(
        protected=protected,
        payload=enc_payload,
        signature=b64url_encode(sig),
        header=header,
        unprotected=dict(unprotected or {}),
        payload_bytes=body,
        signature_bytes=sig,
        key=pub,
    )


def parse_envelope(data: Any, *, expect: str | None = None) -> Envelope:
    """Parse a flattened JWS (bytes, str or an already-decoded JSON object), strictly.

    Raises :class:`MalformedEnvelope` (or :class:`UnsupportedAlgorithm`) for anything that is not an
    EdDSA flattened JWS of a Tabula type; nothing here checks the signature.
    """
    if isinstance(data, (bytes, str)):
        if len(data) > MAX_ENVELOPE_BYTES:
            raise TooLarge(
                f"{len(data)} bytes: too large to be a signed record (at most {MAX_ENVELOPE_BYTES})"
            )
        obj = parse_json(data, "signed file")
    else:
        obj = data
    if not isinstance(obj, dict):
        raise MalformedEnvelope("a signed file is a JSON object")
    keys = set(obj)
    if not {"protected", "payload", "signature"} <= keys or not keys <= {
        "protected",
        "payload",
        "signature",
        "header",
    }:
        raise MalformedEnvelope(
            "not a flattened JWS: expected exactly protected, payload, signature (and optional header), got "
            + ", ".join(sorted(shown(k, 20) for k in keys))
        )
    protected, payload, signature = obj["protected"], obj["payload"], obj["signature"]
    if not isinstance(protected, str):
        raise MalformedEnvelope("protected header must be a base64url string")
    header, key = _parse_header(protected, expect)
    unprotected = obj.get("header", {})
    if not isinstance(unprotected, dict) or not set(unprotected) <= {"endorsement"}:
        raise MalformedEnvelope(
            "the unprotected header may only carry an endorsement (legacy certificates); nothing else "
            "unsigned is accepted"
        )
    if unprotected and (header["typ"] != TYP_CERTIFICATE or "endorsement" in header):
        raise MalformedEnvelope(
            "an unprotected endorsement is accepted only on a legacy certificate without a protected one"
        )
    payload_bytes = b64url_decode(payload, "payload")
    sig = b64url_decode(signature, "signature")
    if len(sig) != 64:
        raise MalformedEnvelope(f"an Ed25519 signature is 64 bytes, got {len(sig)}")
    return Envelope(
        protected=protected,
        payload=payload,
        signature=signature,
        header=header,
        unprotected=unprotected,
        payload_bytes=payload_bytes,
        signature_bytes=sig,
        key=key,
    )


@lru_cache(maxsize=1024)
def _parse_header(protected: str, expect: str | None) -> tuple[dict[str, Any], Ed25519PublicKey]:
    """Decode and check a protected header (cached: a station's headers are all identical)."""
    header = parse_json(b64url_decode(protected, "protected header"), "protected header")
    if not isinstance(header, dict):
        raise MalformedEnvelope("the protected header is not a JSON object")
    typ = _check_members(header)
    if expect is not None and typ != expect:
        raise MalformedEnvelope(f"this is a {typ}, not a {expect}")
    kid = header["kid"]
    if not isinstance(kid, str) or not _HEX64.match(kid):
        raise MalformedEnvelope("kid must be 64 lowercase hex characters")
    key, real_kid = public_from_jwk(header["jwk"])
    if real_kid != kid:
        raise MalformedEnvelope("kid does not match the embedded public key")
    return header, key


def _check_members(header: dict[str, Any]) -> str:
    """The algorithm, the type and exactly the members that type allows; returns the type."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise UnsupportedAlgorithm(f"algorithm {shown(alg)} is not accepted (EdDSA / Ed25519 only)")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ not in TYPES:
        raise MalformedEnvelope(f"unknown signed object type {shown(typ)}")
    allowed = _CERTIFICATE_HEADER_KEYS if typ in ENDORSED_TYPES else _HEADER_KEYS
    if not _HEADER_KEYS <= set(header) <= allowed:
        raise MalformedEnvelope(
            "protected header must hold exactly alg, typ, kid, jwk"
            + (" (and optionally endorsement)" if typ in ENDORSED_TYPES else "")
            + "; got "
            + ", ".join(sorted(shown(k, 20) for k in header))
        )
    if "endorsement" in header and not isinstance(header["endorsement"], dict):
        raise MalformedEnvelope("the protected endorsement must be a JWS object")
    return typ


def envelope_bytes(env: Envelope) -> bytes:
    """The file form of a signed object: pretty JSON (whitespace is not signed), newline-terminated."""
    return (json.dumps(env.to_json(), indent=2, sort_keys=True) + "\n").encode("ascii")
