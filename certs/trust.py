"""The trust store: which keys an auditor accepts, and for what.

A trust store is one or more directories holding:

* ``*.pem``: trusted public keys, each with its role (see :mod:`certs.keys`)::

      Tabula-Role: station              Tabula-Role: organisation
      Tabula-Station-Id: bench-1        -----BEGIN PUBLIC KEY-----
      -----BEGIN PUBLIC KEY-----        ...

  A station key signs certificates, only as the station id it is bound to.  An organisation key
  endorses station keys and signs revocation lists; it never signs a certificate itself.  A PEM
  without role lines (what trust stores held before roles) is an organisation key.  Private keys
  are refused.
* ``*.json``: signed files, told apart by their JWS ``typ``: endorsements (``station keys endorse``
  output; certificates also carry their station's endorsement, so an auditor usually needs the
  organisation's public key only) and revocation lists (``station keys revoke`` output, see
  :mod:`certs.revocation`).

Decision for a certificate signed by key K, as station S, at time T (its signed ``issued_at``):

1. K is in the store as a station key: trusted if K is bound to S (else :class:`StationMismatch`).
   K in the store as an organisation key: :class:`KeyRoleError`.
2. Otherwise an endorsement of (S, K) whose validity period contains T, signed by an organisation key
   of the store: trusted.  An endorsement signed by a station key is never acceptable.
3. Otherwise, if some endorsement of K was offered but none is acceptable: :class:`UnendorsedKey`.
4. Otherwise: :class:`UnknownKey`.

Then revocation: if K (or the organisation key that endorsed it) is revoked by a revocation list signed
by an organisation key of the store at a time <= T: :class:`RevokedKey`; revoked after T: trusted, with a
note.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.canonical import parse_json
from certs.errors import (
    KeyRoleError,
    KeyStoreError,
    RevokedKey,
    SchemaError,
    StationMismatch,
    TrustStoreError,
    UnendorsedKey,
    UnknownKey,
    VerificationError,
)
from certs.jws import TYP_ENDORSEMENT, TYP_REVOCATION, Envelope, kid_of, parse_envelope
from certs.keys import (
    ROLE_LOG,
    ROLE_ORGANISATION,
    ROLE_STATION,
    Endorsement,
    PublicKeyFile,
    check_station_id,
    load_public_pem,
    parse_time,
    read_endorsement,
    read_public_pem,
)
from certs.revocation import Revocation, RevocationList, read_revocation_list

#: Largest file a trust directory may hold (keys and endorsements are a few kilobytes).
MAX_TRUST_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TrustedKey:
    key: Ed25519PublicKey
    kid: str
    role: str  # ROLE_STATION or ROLE_ORGANISATION
    station_id: str | None  # the station a station key may sign as
    source: str
    declared: bool = True  # False: a bare PEM, an organisation key by default


@dataclass
class TrustDecision:
    """How trust was established, and what an auditor should know (e.g. a later revocation)."""

    description: str
    notes: list[str] = field(default_factory=list)


class TrustStore:
    def __init__(self) -> None:
        self.entries: dict[str, TrustedKey] = {}
        self._endorsements: dict[str, list[Endorsement]] = {}
        self._lists: list[RevocationList] = []
        self._revoked: dict[str, Revocation] | None = None
        self._checked: dict[str, Endorsement | VerificationError] = {}
        self.warnings: list[str] = []  # what an auditor should know about the store itself

    # --- building the store -------------------------------------------------------------------

    @property
    def keys(self) -> dict[str, Ed25519PublicKey]:
        """Every trusted key by kid, whatever its role."""
        return {kid: e.key for kid, e in self.entries.items()}

    @property
    def sources(self) -> dict[str, str]:
        return {kid: e.source for kid, e in self.entries.items()}

    def _add(self, entry: TrustedKey) -> str:
        old = self.entries.get(entry.kid)
        if old is not None and (old.role, old.station_id) != (entry.role, entry.station_id):
            if old.declared and entry.declared:
                raise TrustStoreError(
                    f"key {entry.kid[:16]} is a {_describe(old)} in {old.source} "
                    f"but a {_describe(entry)} in {entry.source}"
                )
            if old.declared:  # a bare PEM does not override a key file that says its role
                return entry.kid
        elif old is not None:
            return entry.kid
        self.entries[entry.kid] = entry
        self._revoked = None
        return entry.kid

    def add_key(
        self,
        key: Ed25519PublicKey,
        source: str,
        *,
        role: str = ROLE_ORGANISATION,
        station_id: str | None = None,
    ) -> str:
        if role == ROLE_STATION:
            try:
                check_station_id(station_id or "")
            except KeyStoreError as e:
                raise TrustStoreError(f"{source}: {e.message}") from e
        elif role != ROLE_ORGANISATION or station_id is not None:
            raise TrustStoreError(f"{source}: an organisation key has no station id")
        return self._add(TrustedKey(key, kid_of(key), role, station_id, source))

    def add_organisation_key(self, data: bytes | Ed25519PublicKey, source: str) -> str:
        """Trust an organisation key (a PEM, with or without role lines, or a key object)."""
        key = self._key(data, source)
        return self.add_key(key, source, role=ROLE_ORGANISATION)

    def add_station_key(self, data: bytes | Ed25519PublicKey, station_id: str, source: str) -> str:
        """Trust a station key directly, for certificates it signs as ``station_id`` only."""
        key = self._key(data, source)
        return self.add_key(key, source, role=ROLE_STATION, station_id=station_id)

    def _key(self, data: bytes | Ed25519PublicKey, source: str) -> Ed25519PublicKey:
        if isinstance(data, Ed25519PublicKey):
            return data
        if b"PRIVATE KEY" in data:
            raise TrustStoreError(f"{source} is a private key; a trust store holds public keys only")
        try:
            return load_public_pem(data, source)
        except KeyStoreError as e:
            raise TrustStoreError(e.message) from e

    def add_pem(self, data: bytes, source: str) -> str:
        """Trust a public key file with the role it declares (a bare PEM: an organisation key)."""
        if b"PRIVATE KEY" in data:
            raise TrustStoreError(f"{source} is a private key; a trust store holds public keys only")
        try:
            info: PublicKeyFile = read_public_pem(data, source)
        except KeyStoreError as e:
            raise TrustStoreError(e.message) from e
        if info.role == ROLE_LOG:
            raise TrustStoreError(
                f"{source} is a hub's transparency-log key: it signs tree heads, not certificates "
                "(give it to station verify --log, not --trust)"
            )
        return self._add(TrustedKey(info.key, info.kid, info.role, info.station_id, source, info.declared))

    def add_endorsement(self, data: Any, source: str) -> Endorsement:
        try:
            e = read_endorsement(data)
        except VerificationError as err:
            raise TrustStoreError(f"{source}: not a valid endorsement ({err.message})") from err
        self._endorsements.setdefault(e.station_kid, []).append(e)
        return e

    def add_revocation_list(self, data: Any, source: str) -> RevocationList:
        try:
            rl = read_revocation_list(data)
        except VerificationError as err:
            raise TrustStoreError(f"{source}: not a valid revocation list ({err.message})") from err
        self._lists.append(rl)
        self._revoked = None
        return rl

    def add_signed_file(self, data: bytes, source: str) -> None:
        """An endorsement or a revocation list, told apart by its JWS ``typ``."""
        try:
            typ = parse_envelope(data).typ
        except VerificationError as err:
            raise TrustStoreError(f"{source}: not a signed Tabula file ({err.message})") from err
        if typ == TYP_ENDORSEMENT:
            self.add_endorsement(data, source)
        elif typ == TYP_REVOCATION:
            self.add_revocation_list(data, source)
        else:
            raise TrustStoreError(f"{source}: a {typ} does not belong in a trust store")

    @classmethod
    def load(cls, dirs: Iterable[Path]) -> TrustStore:
        store = cls()
        for d in dirs:
            store.add_dir(d)
        return store

    def add_dir(self, directory: Path) -> None:
        if not directory.is_dir():
            raise TrustStoreError(f"trust directory {directory} does not exist")
        files = sorted(p for p in directory.iterdir() if p.is_file())
        for p in files:
            if p.suffix == ".pem":
                self.add_pem(_read(p), str(p))
        for p in files:
            if p.suffix == ".json":
                self.add_signed_file(_read(p), str(p))

    def add_key_dir(self, key_dir: Path) -> None:
        """Trust this machine's own keys (``station.pub.pem`` as its station id, ``org.pub.pem``)."""
        station_pem = key_dir / "station.pub.pem"
        if station_pem.is_file():
            meta = parse_json(_read(key_dir / "station.json"), "station.json")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str):
                raise TrustStoreError(f"{key_dir / 'station.json'} does not name the station")
            self.add_station_key(_read(station_pem), name, str(station_pem))
        org_pem = key_dir / "org.pub.pem"
        if org_pem.is_file():
            self.add_organisation_key(_read(org_pem), str(org_pem))

    def __len__(self) -> int:
        return len(self.entries)

    # --- deciding -----------------------------------------------------------------------------

    def _check_offered(self, raw: Any) -> Endorsement | VerificationError:
        """Read an endorsement carried by a certificate, once per distinct endorsement (cached)."""
        cache_key: str | None = None
        if isinstance(raw, dict) and all(
            isinstance(raw.get(k), str) for k in ("protected", "payload", "signature")
        ):
            cache_key = f"{raw['protected']}.{raw['payload']}.{raw['signature']}"  # the whole signed object
        if cache_key is not None and cache_key in self._checked:
            return self._checked[cache_key]
        result: Endorsement | VerificationError
        try:
            result = read_endorsement(raw)
        except VerificationError as err:
            result = err
        if cache_key is not None:
            self._checked[cache_key] = result
        return result

    def check(self, env: Envelope, station_id: str | None, issued_at: Any = None) -> TrustDecision:
        """Raise a :class:`VerificationError` unless ``env``'s signer may sign as ``station_id`` at ``issued_at``.

        ``issued_at`` is the certificate's signed timestamp; when it cannot be read, the validity and
        revocation checks are left to the schema check, which refuses the certificate anyway.
        """
        when = _when(issued_at)
        kid = env.kid
        entry = self.entries.get(kid)
        if entry is not None:
            self._check_direct(entry, station_id)
            return TrustDecision(
                f"station key {kid[:16]} trusted directly for station {entry.station_id} ({entry.source})",
                self._revocation_notes([kid], when),
            )
        e = self._endorsement_for(env, station_id, when)
        org = self.entries[e.org_kid]
        return TrustDecision(
            f"station key endorsed by {e.organisation} (key {e.org_kid[:16]}, {org.source})",
            self._revocation_notes([kid, e.org_kid], when),
        )

    def _check_direct(self, entry: TrustedKey, station_id: str | None) -> None:
        if entry.role != ROLE_STATION:
            raise KeyRoleError(
                f"key {entry.kid[:16]} is an organisation key ({entry.source}): it endorses station keys "
                "and cannot sign a certificate itself"
                + (
                    ""
                    if entry.declared
                    else "; to trust a station key directly, give its role and station id"
                )
            )
        if station_id is not None and station_id != entry.station_id:
            raise StationMismatch(
                f"key {entry.kid[:16]} is trusted for station {entry.station_id!r} ({entry.source}), "
                f"but this certificate says station {station_id!r}"
            )

    def _endorsement_for(self, env: Envelope, station_id: str | None, when: datetime | None) -> Endorsement:
        kid = env.kid
        offered: list[Endorsement] = list(self._endorsements.get(kid, ()))
        problems: list[str] = []
        raw = env.endorsement
        if raw is not None:
            got = self._check_offered(raw)
            if isinstance(got, VerificationError):
                problems.append(f"embedded endorsement invalid: {got.message}")
            elif got.station_kid != kid:
                problems.append("embedded endorsement is for another key")
            else:
                offered.append(got)
        for e in offered:
            problem = self._endorsement_problem(e, station_id, when)
            if problem is None:
                return e
            problems.append(problem)
        if problems:
            raise UnendorsedKey(
                f"station key {kid[:16]} is not endorsed by a trusted organisation key: "
                + "; ".join(problems)
            )
        raise UnknownKey(f"signing key {kid[:16]} is not in the trust store and carries no endorsement")

    def _endorsement_problem(
        self, e: Endorsement, station_id: str | None, when: datetime | None
    ) -> str | None:
        signer = self.entries.get(e.org_kid)
        if signer is None:
            return f"endorsed by untrusted key {e.org_kid[:16]} ({e.organisation})"
        if signer.role != ROLE_ORGANISATION:
            return f"endorsed by {e.org_kid[:16]}, a station key ({signer.source}): only organisation keys endorse"
        if station_id is not None and e.station_id != station_id:
            return f"endorsement names station {e.station_id!r}, certificate says {station_id!r}"
        if when is not None and not e.covers(when):
            return (
                f"the endorsement by {e.organisation} is valid {e.period()}, "
                f"this was signed at {when:%Y-%m-%dT%H:%M:%SZ}"
            )
        return None

    def revocations(self) -> dict[str, Revocation]:
        """The earliest revocation of each key, from the lists signed by trusted organisation keys."""
        if self._revoked is None:
            out: dict[str, Revocation] = {}
            self.warnings = []
            for rl in self._lists:
                signer = self.entries.get(rl.org_kid)
                if signer is None or signer.role != ROLE_ORGANISATION:
                    self.warnings.append(
                        f"revocation list of {rl.organisation!r} ignored: key {rl.org_kid[:16]} is not a trusted "
                        "organisation key"
                    )
                    continue
                for r in rl.revoked:
                    if r.kid not in out or r.when < out[r.kid].when:
                        out[r.kid] = r
            self._revoked = out
        return self._revoked

    def _revocation_notes(self, kids: list[str], when: datetime | None) -> list[str]:
        revoked = self.revocations()
        notes: list[str] = []
        if when is None or not revoked:
            return notes
        for kid in kids:
            r = revoked.get(kid)
            if r is None:
                continue
            what = f"key {kid[:16]} was revoked by {r.organisation} from {r.revoked_at} ({r.reason}"
            what += f": {r.comment})" if r.comment else ")"
            if when >= r.when:
                raise RevokedKey(f"{what}; this was signed after that, at {when:%Y-%m-%dT%H:%M:%SZ}")
            notes.append(f"{what}; this was signed before, at {when:%Y-%m-%dT%H:%M:%SZ}")
        return notes


def _describe(entry: TrustedKey) -> str:
    return f"station key of {entry.station_id}" if entry.role == ROLE_STATION else "organisation key"


def _when(issued_at: Any) -> datetime | None:
    try:
        return parse_time(issued_at, "issued_at")
    except SchemaError:
        return None


def _read(path: Path) -> bytes:
    """A trust file, refused before reading when it is too large to be a key or a signed statement."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TRUST_FILE_BYTES + 1)
    except OSError as e:
        raise TrustStoreError(f"cannot read {path}: {e.strerror}") from e
    if len(data) > MAX_TRUST_FILE_BYTES:
        raise TrustStoreError(
            f"{path} is larger than {MAX_TRUST_FILE_BYTES} bytes: not a key or a signed file"
        )
    return data


def read_endorsement_file(path: Path) -> Endorsement:
    return read_endorsement(parse_json(_read(path), str(path)))
