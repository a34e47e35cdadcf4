"""Station and organisation keys, and endorsements binding a station id to a station key.

Two kinds of keys, never interchangeable: a **station key** signs certificates as one station id; an
**organisation key** endorses station keys (and signs revocation lists, :mod:`certs.revocation`, and lot
reports, :mod:`certs.lotreport`).

Files in the key directory (``$TABULA_HOME/keys``, mode 0700):

* ``station.key``      the station's Ed25519 private key (PKCS#8 PEM, mode 0600; never printed, never synced)
* ``station.pub.pem``  its public key with its role (see :func:`role_pem`), what ``station keys export`` prints
* ``station.json``     ``{"role": "station", "name": <station id>, "kid", "created_at"}``
* ``endorsement.json`` optional: the organisation's endorsement of this station key; embedded in the
  protected header of every certificate so an auditor who trusts the organisation key needs nothing else
* ``org.key`` / ``org.pub.pem`` / ``org.json``  optional organisation key (on the administrator's
  machine; ``org.json`` says ``"role": "organisation"``, or ``"org"`` in files written before roles)
* ``revocations.json`` optional, next to ``org.key``: the organisation's signed revocation list
* ``sequence.json``, ``sequence.lock``  the certificate sequence state (see :mod:`certs.sequence`)

Public key files carry their role as RFC 7468 explanatory text before the PEM block, which OpenSSL and
every PEM reader skip::

    Tabula-Role: station
    Tabula-Station-Id: bench-1
    -----BEGIN PUBLIC KEY-----
    ...

(``Tabula-Role: organisation`` for an organisation key, ``Tabula-Role: log`` for a hub's transparency-log
key, which signs tree heads and nothing else.)  A PEM without these lines is read as an
organisation key: that is what trust stores held before roles existed, and a bare key cannot say which
station it may sign for.

An endorsement (``tabula.endorsement/2``, JWS ``typ: tabula-endorsement+json``) is signed by an
organisation key and says: key ``station_kid`` (``station_jwk``) is station ``station_id``, with role
``station``, for certificates issued from ``not_before`` to ``not_after``.  Endorsements of format
``/1`` (no role, no validity period) are still read: they never expire, but revocation applies.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

from certs.canonical import parse_json, shown
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

ROLE_STATION = "station"
ROLE_ORGANISATION = "organisation"
ROLE_LOG = "log"  # a hub's transparency-log key: signs tree heads only (certs/tlog.py)
ROLES = (ROLE_STATION, ROLE_ORGANISATION, ROLE_LOG)
ENDORSEMENT_SCHEMA = "tabula.endorsement/2"
LEGACY_ENDORSEMENT_SCHEMA = "tabula.endorsement/1"
#: An endorsement's default validity: from one day before it is made (clocks disagree) for three years.
DEFAULT_VALIDITY = timedelta(days=3 * 365)
CLOCK_MARGIN = timedelta(days=1)
_STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_PEM_HEADER = re.compile(rb"^Tabula-([A-Za-z-]+):[ \t]*([^\r\n]*?)[ \t]*\r?$", re.M)


def utc_now() -> str:
    return format_time(datetime.now(UTC))


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, what: str) -> datetime:
    """A UTC timestamp ``YYYY-MM-DDTHH:MM:SSZ`` (fractions of a second allowed), strictly."""
    if not isinstance(value, str) or not _TS.match(value):
        raise SchemaError(f"{what} must be a UTC timestamp like 2025-01-31T12:00:00Z, got {shown(value)}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise SchemaError(f"{what} is not a valid date: {shown(value)}") from e


def check_station_id(station_id: str) -> str:
    if not _STATION_ID.match(station_id):
        raise KeyStoreError(
            f"invalid station id {station_id!r}",
            hint="use 1-128 letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit",
        )
    return station_id


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def role_pem(key: Ed25519PublicKey, role: str, station_id: str | None = None) -> str:
    """The public key as PEM, preceded by its role (and, for a station key, the station id it signs as)."""
    lines = [f"Tabula-Role: {role}"]
    if role == ROLE_STATION:
        lines.append(f"Tabula-Station-Id: {check_station_id(station_id or '')}")
    return "\n".join(lines) + "\n" + public_pem(key)


@dataclass(frozen=True)
class PublicKeyFile:
    """A public key file read with its role: what a trust store entry is made of."""

    key: Ed25519PublicKey
    kid: str
    role: str  # ROLE_STATION, ROLE_ORGANISATION or ROLE_LOG
    station_id: str | None  # the station a station key signs as (None for an organisation key)
    declared: bool  # False: a bare PEM (legacy), read as an organisation key


def read_public_pem(data: bytes, source: str) -> PublicKeyFile:
    """Read a public key file and the role written before its PEM block (see the module docstring)."""
    key = load_public_pem(data, source)
    head = data.split(b"-----BEGIN", 1)[0]
    fields: dict[str, str] = {}
    for m in _PEM_HEADER.finditer(head):
        name = m.group(1).decode("ascii", "replace").lower()
        if name in fields:
            raise KeyStoreError(f"{source}: Tabula-{m.group(1).decode('ascii', 'replace')} is given twice")
        fields[name] = m.group(2).decode("utf-8", "replace")
    unknown = sorted(set(fields) - {"role", "station-id"})
    if unknown:
        raise KeyStoreError(f"{source}: unknown key file field(s) Tabula-{', Tabula-'.join(unknown)}")
    role = fields.get("role", ROLE_ORGANISATION)
    if role not in ROLES:
        raise KeyStoreError(f"{source}: unknown key role {shown(role)} (station, organisation or log)")
    station_id = fields.get("station-id")
    if role == ROLE_STATION:
        if station_id is None:
            raise KeyStoreError(
                f"{source}: a station key names the station it signs as (Tabula-Station-Id: ...)"
            )
        check_station_id(station_id)
    elif station_id is not None:
        raise KeyStoreError(f"{source}: a key of role {role} has no station id")
    return PublicKeyFile(key, kid_of(key), role, station_id, declared="role" in fields)


def load_public_pem(data: bytes, source: str) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM file (explanatory text before the PEM block is ignored)."""
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as e:
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

    role: str  # 'station' or 'org' (the file prefix; the key's role is ROLE_STATION / ROLE_ORGANISATION)
    name: str  # station id, or organisation name
    private: Ed25519PrivateKey
    kid: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_role(self) -> str:
        return ROLE_STATION if self.role == "station" else ROLE_ORGANISATION

    def public_file(self) -> str:
        """The public key file content: the PEM with its role (and station id)."""
        return role_pem(self.public, self.key_role, self.name if self.role == "station" else None)


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
    signing = SigningKey(role=role, name=name, private=key, kid=kid)
    atomic_write(key_dir / f"{role}.pub.pem", signing.public_file().encode("ascii"))
    meta = {"role": signing.key_role, "name": name, "kid": kid, "created_at": utc_now()}
    atomic_write(key_dir / f"{role}.json", (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return signing


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
    """The public key file: PEM with its role and, for a station key, its station id (never the private key)."""
    return _load(key_dir, role).public_file()


# --- endorsements ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endorsement:
    """A verified endorsement: organisation key ``org_kid`` vouches that ``station_kid`` is ``station_id``.

    ``not_before`` / ``not_after`` bound the certificates it covers (by their signed ``issued_at``);
    both are ``None`` for a legacy ``tabula.endorsement/1``, which has no validity period.
    """

    station_id: str
    station_kid: str
    organisation: str
    org_kid: str
    issued_at: str
    envelope: Envelope
    role: str = ROLE_STATION
    not_before: str | None = None
    not_after: str | None = None
    schema: str = ENDORSEMENT_SCHEMA

    def covers(self, when: datetime) -> bool:
        """Whether a certificate signed at ``when`` falls in this endorsement's validity period."""
        if self.not_before is not None and when < parse_time(self.not_before, "not_before"):
            return False
        return self.not_after is None or when <= parse_time(self.not_after, "not_after")

    def period(self) -> str:
        return f"from {self.not_before or 'always'} to {self.not_after or 'forever'}"


def endorse(
    org: SigningKey,
    station_id: str,
    station_public: Ed25519PublicKey,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Envelope:
    """Sign a statement binding ``station_id`` to ``station_public`` with the organisation key.

    The validity period defaults to one day before now (clocks disagree) until three years from now.
    """
    if org.key_role != ROLE_ORGANISATION:
        raise KeyStoreError("only an organisation key endorses station keys")
    now = datetime.now(UTC)
    start = not_before or now - CLOCK_MARGIN
    end = not_after or now + DEFAULT_VALIDITY
    if end <= start:
        raise KeyStoreError(
            f"the endorsement would end ({format_time(end)}) before it starts ({format_time(start)})"
        )
    payload = {
        "schema": ENDORSEMENT_SCHEMA,
        "endorsement_id": str(uuid.uuid4()),
        "role": ROLE_STATION,
        "station_id": check_station_id(station_id),
        "station_kid": kid_of(station_public),
        "station_jwk": jwk_of(station_public),
        "organisation": org.name,
        "issued_at": format_time(now),
        "not_before": format_time(start),
        "not_after": format_time(end),
    }
    return sign(payload, org.private, TYP_ENDORSEMENT)


_ENDORSEMENT_V1_KEYS = frozenset(
    {"schema", "endorsement_id", "station_id", "station_kid", "station_jwk", "organisation", "issued_at"}
)
_ENDORSEMENT_V2_KEYS = _ENDORSEMENT_V1_KEYS | {"role", "not_before", "not_after"}


def read_endorsement(data: Any) -> Endorsement:
    """Parse and check an endorsement's signature and content (not whether its signer is trusted)."""
    env = parse_envelope(data, expect=TYP_ENDORSEMENT)
    env.verify_signature()
    payload = parse_json(env.payload_bytes, "endorsement payload")
    if not isinstance(payload, dict):
        raise SchemaError("an endorsement's payload is a JSON object")
    schema = payload.get("schema")
    want = {ENDORSEMENT_SCHEMA: _ENDORSEMENT_V2_KEYS, LEGACY_ENDORSEMENT_SCHEMA: _ENDORSEMENT_V1_KEYS}.get(
        schema if isinstance(schema, str) else ""
    )
    if want is None or set(payload) != want:
        raise SchemaError(f"not a {ENDORSEMENT_SCHEMA} (or /1) statement")
    for k in sorted(want - {"station_jwk"}):
        if not isinstance(payload[k], str):
            raise SchemaError(f"endorsement {k} must be a string")
    _, jwk_kid = public_from_jwk(payload["station_jwk"])
    if jwk_kid != payload["station_kid"]:
        raise SchemaError("endorsement station_kid does not match its station_jwk")
    if schema == ENDORSEMENT_SCHEMA:
        if payload["role"] != ROLE_STATION:
            raise SchemaError(f"an endorsement endorses a station key, not a {shown(payload['role'])} key")
        try:
            check_station_id(payload["station_id"])
        except KeyStoreError as e:
            raise SchemaError(f"endorsement: {e.message}") from e
        if parse_time(payload["not_after"], "not_after") <= parse_time(payload["not_before"], "not_before"):
            raise SchemaError("the endorsement's validity period ends before it starts")
        parse_time(payload["issued_at"], "issued_at")
    return Endorsement(
        station_id=payload["station_id"],
        station_kid=payload["station_kid"],
        organisation=payload["organisation"],
        org_kid=env.kid,
        issued_at=payload["issued_at"],
        envelope=env,
        role=payload.get("role", ROLE_STATION),
        not_before=payload.get("not_before"),
        not_after=payload.get("not_after"),
        schema=str(schema),
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
    if e.not_after is not None and parse_time(e.not_after, "not_after") < datetime.now(UTC):
        raise KeyStoreError(
            f"this endorsement expired on {e.not_after}", hint="ask the organisation for a new endorsement"
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
