"""The trust store: which keys an auditor accepts.

A trust store is one or more directories holding:

* ``*.pem``: trusted public keys.  A trusted key may sign certificates directly (a station key) and
  may endorse station keys (an organisation key).  Private keys are refused.
* ``*.json``: endorsements (``station keys endorse`` output).  Certificates also carry their
  station's endorsement, so an auditor usually needs the organisation's public key only.

Decision for a certificate signed by key K of station S:

1. K is in the store: trusted.
2. Otherwise an endorsement of (S, K) signed by a trusted key: trusted.
3. Otherwise, if some endorsement of K was offered but none is acceptable (signer not trusted,
   station id differs, bad signature): :class:`UnendorsedKey`.
4. Otherwise: :class:`UnknownKey`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certs.canonical import parse_json
from certs.errors import KeyStoreError, TrustStoreError, UnendorsedKey, UnknownKey, VerificationError
from certs.jws import Envelope, kid_of
from certs.keys import Endorsement, load_public_pem, read_endorsement


class TrustStore:
    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {}
        self.sources: dict[str, str] = {}
        self._endorsements: dict[str, list[Endorsement]] = {}
        self._checked: dict[str, Endorsement | VerificationError] = {}

    def add_key(self, key: Ed25519PublicKey, source: str) -> str:
        kid = kid_of(key)
        self.keys[kid] = key
        self.sources.setdefault(kid, source)
        return kid

    def add_pem(self, data: bytes, source: str) -> str:
        if b"PRIVATE KEY" in data:
            raise TrustStoreError(f"{source} is a private key; a trust store holds public keys only")
        try:
            return self.add_key(load_public_pem(data, source), source)
        except KeyStoreError as e:
            raise TrustStoreError(e.message) from e

    def add_endorsement(self, data: Any, source: str) -> Endorsement:
        try:
            e = read_endorsement(data)
        except VerificationError as err:
            raise TrustStoreError(f"{source}: not a valid endorsement ({err.message})") from err
        self._endorsements.setdefault(e.station_kid, []).append(e)
        return e

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
                self.add_pem(p.read_bytes(), str(p))
        for p in files:
            if p.suffix == ".json":
                self.add_endorsement(p.read_bytes(), str(p))

    def __len__(self) -> int:
        return len(self.keys)

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

    def check(self, env: Envelope, station_id: str | None) -> str:
        """Raise :class:`UnknownKey` / :class:`UnendorsedKey` unless ``env``'s signer is trusted.

        Returns how trust was established (for the verdict).
        """
        kid = env.kid
        if kid in self.keys:
            return f"key {kid[:16]} trusted directly ({self.sources[kid]})"
        offered: list[Endorsement] = list(self._endorsements.get(kid, ()))
        problems: list[str] = []
        raw = env.unprotected.get("endorsement")
        if raw is not None:
            got = self._check_offered(raw)
            if isinstance(got, VerificationError):
                problems.append(f"embedded endorsement invalid: {got.message}")
            elif got.station_kid != kid:
                problems.append("embedded endorsement is for another key")
            else:
                offered.append(got)
        for e in offered:
            if e.org_kid not in self.keys:
                problems.append(f"endorsed by untrusted key {e.org_kid[:16]} ({e.organisation})")
            elif station_id is not None and e.station_id != station_id:
                problems.append(
                    f"endorsement names station {e.station_id!r}, certificate says {station_id!r}"
                )
            else:
                return f"station key endorsed by {e.organisation} (key {e.org_kid[:16]}, {self.sources[e.org_kid]})"
        if problems:
            raise UnendorsedKey(
                f"station key {kid[:16]} is not endorsed by a trusted key: " + "; ".join(problems)
            )
        raise UnknownKey(f"signing key {kid[:16]} is not in the trust store and carries no endorsement")


def read_endorsement_file(path: Path) -> Endorsement:
    return read_endorsement(parse_json(path.read_bytes(), str(path)))
