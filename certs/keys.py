"""Station and organisation keys, and endorsements binding a station id to a station key.

Files in the key directory (``$TABULA_HOME/keys``, mode 0700):

* ``station.key``      the station's Ed25519 private key (PKCS#8 PEM, mode 0600; never printed, never synced)
* ``station.pub.pem``  its public key (SPKI PEM), what ``station keys export`` prints
* ``station.json``     ``{"station_id", "kid", "created_at"}``
* ``endorsement.json`` optional: the organisation's endorsement of this station key; embedded in every
  certificate so an auditor who trusts the organisation key needs nothing else
* ``org.key`` / ``org.pub.pem`` / ``org.json``  optional organisation key (on the administrator's machine)
* ``sequence.json``, ``sequence.lock``  the certificate sequence state (see :mod:`certs.sequence`)
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from certs.canonical import parse_json
from certs.errors import (
    BadSignature,
    KeyExists,
    KeyMissing,
    KeyStoreError,
    MalformedEnvelope,
    SchemaError,
    VerificationError,
)
from certs.fsio import atomic_write, ensure_private_dir
from certs.jws import TYP_ENDORSEMENT, Envelope, jwk_of, kid_of, parse_envelope, public_from_jwk, sign

ENDORSEMENT_SCHEMA = "tabula.endorsement/1"
_STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_station_id(station_id: str) -> str:
    if not _STATION_ID.match(station_id):
        raise KeyStoreError(
            f"invalid station id {station_id!r}",
            hint="use 1-128 letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit",
        )
    return station_id


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_pem(data: bytes, source: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(data)
    except ValueError as e:
        raise KeyStoreError(f"{source} is not a PEM public key") from e
    if not isinstance(key, Ed25519PublicKey):
        raise KeyStoreError(f"{source} is not an Ed25519 public key")
    return key


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        st = path.stat()
    except FileNotFoundError as e:
        raise KeyMissing(f"no key at {path}") from e
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyStoreError(
            f"{path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"chmod 600 {path}, and consider the key compromised if others could read it",
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise KeyStoreError(f"{path} is not an unencrypted PEM private key") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError(f"{path} is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key with its identity (station or organisation)."""

    role: str  # 'station' or 'org'
    name: str  # station id, or organisation name
    private: Ed25519PrivateKey
    kid: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()


def _init(key_dir: Path, role: str, name: str) -> SigningKey:
    ensure_private_dir(key_dir)
    key_path = key_dir / f"{role}.key"
    if key_path.exists():
        raise KeyExists(f"a {role} key already exists at {key_path}")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        atomic_write(key_path, pem, mode=0o600, exclusive=True)
    except FileExistsError as e:
        raise KeyExists(f"a {role} key already exists at {key_path}") from e
    kid = kid_of(key.public_key())
    atomic_write(key_dir / f"{role}.pub.pem", public_pem(key.public_key()).encode("ascii"))
    meta = {"role": role, "name": name, "kid": kid, "created_at": utc_now()}
    atomic_write(key_dir / f"{role}.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return SigningKey(role=role, name=name, private=key, kid=kid)


def _load(key_dir: Path, role: str) -> SigningKey:
    key = _load_private(key_dir / f"{role}.key")
    meta_path = key_dir / f"{role}.json"
    try:
        meta = parse_json(meta_path.read_bytes(), str(meta_path))
    except FileNotFoundError as e:
        raise KeyMissing(f"{meta_path} is missing") from e
    except MalformedEnvelope as e:
        raise KeyStoreError(f"{meta_path} is corrupt: {e.message}") from e
    kid = kid_of(key.public_key())
    if not isinstance(meta, dict) or meta.get("kid") != kid or not isinstance(meta.get("name"), str):
        raise KeyStoreError(f"{meta_path} does not describe the key in {role}.key")
    return SigningKey(role=role, name=meta["name"], private=key, kid=kid)


def init_station_key(key_dir: Path, station_id: str) -> SigningKey:
    """Create the station key (0600).  Never overwrites an existing key."""
    return _init(key_dir, "station", check_station_id(station_id))


def load_station_key(key_dir: Path) -> SigningKey:
    return _load(key_dir, "station")


def init_org_key(key_dir: Path, organisation: str) -> SigningKey:
    if not organisation.strip():
        raise KeyStoreError("the organisation key needs the organisation's name")
    return _init(key_dir, "org", organisation.strip())


def load_org_key(key_dir: Path) -> SigningKey:
    return _load(key_dir, "org")


def export_public(key_dir: Path, role: str = "station") -> str:
    """The PEM public key (never the private key)."""
    return public_pem(_load(key_dir, role).public)


# --- endorsements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endorsement:
    """A verified endorsement: organisation key ``org_kid`` vouches that ``station_kid`` is ``station_id``."""

    station_id: str
    station_kid: str
    organisation: str
    org_kid: str
    issued_at: str
    envelope: Envelope


def endorse(org: SigningKey, station_id: str, station_public: Ed25519PublicKey) -> Envelope:
    """Sign a statement binding ``station_id`` to ``station_public`` with the organisation key."""
    payload = {
        "schema": ENDORSEMENT_SCHEMA,
        "endorsement_id": str(uuid.uuid4()),
        "station_id": check_station_id(station_id),
        "station_kid": kid_of(station_public),
        "station_jwk": jwk_of(station_public),
        "organisation": org.name,
        "issued_at": utc_now(),
    }
    return sign(payload, org.private, TYP_ENDORSEMENT)


def read_endorsement(data: Any) -> Endorsement:
    """Parse and check an endorsement's signature and content (not whether its signer is trusted)."""
    env = parse_envelope(data, expect=TYP_ENDORSEMENT)
    env.verify_signature()
    payload = parse_json(env.payload_bytes, "endorsement payload")
    want = {
        "schema",
        "endorsement_id",
        "station_id",
        "station_kid",
        "station_jwk",
        "organisation",
        "issued_at",
    }
    if not isinstance(payload, dict) or set(payload) != want or payload["schema"] != ENDORSEMENT_SCHEMA:
        raise SchemaError("not a tabula.endorsement/1 statement")
    for k in ("endorsement_id", "station_id", "station_kid", "organisation", "issued_at"):
        if not isinstance(payload[k], str):
            raise SchemaError(f"endorsement {k} must be a string")
    _, jwk_kid = public_from_jwk(payload["station_jwk"])
    if jwk_kid != payload["station_kid"]:
        raise SchemaError("endorsement station_kid does not match its station_jwk")
    return Endorsement(
        station_id=payload["station_id"],
        station_kid=payload["station_kid"],
        organisation=payload["organisation"],
        org_kid=env.kid,
        issued_at=payload["issued_at"],
        envelope=env,
    )


def install_endorsement(key_dir: Path, data: bytes) -> Endorsement:
    """Install an endorsement of *this* station's key so it is embedded in every certificate."""
    station = load_station_key(key_dir)
    try:
        e = read_endorsement(data)
    except BadSignature as err:
        raise KeyStoreError(f"the endorsement's signature is invalid: {err.message}") from err
    except VerificationError as err:
        raise KeyStoreError(f"not a valid endorsement: {err.message}") from err
    if e.station_kid != station.kid:
        raise KeyStoreError("this endorsement is for another station key", hint="endorse this station's key")
    if e.station_id != station.name:
        raise KeyStoreError(
            f"this endorsement names station {e.station_id!r}, this station is {station.name!r}"
        )
    atomic_write(key_dir / "endorsement.json", data)
    return e


def load_installed_endorsement(key_dir: Path, station: SigningKey) -> Endorsement | None:
    path = key_dir / "endorsement.json"
    if not path.exists():
        return None
    e = read_endorsement(path.read_bytes())
    if e.station_kid != station.kid or e.station_id != station.name:
        raise KeyStoreError(f"{path} endorses another station key; remove it or install the right one")
    return e


def station_id_default() -> str:
    return os.uname().nodename or "station"
