"""Shared helpers and fixtures of the sync and hub tests (no tests here).

* an organisation with an org key, stations endorsed by it (``Kit``), each with a ``TABULA_HOME``;
* ``Kit.mint(n)``: n real certificates, signed with the station key and chained exactly as
  ``certs.issue`` does (without the PDF, which is not what is synced), each with its own drive serial
  and asset number, written to ``<home>/certs/<id>.json``;
* ``hub_url`` fixture: a Hub database, SQLite or a real PostgreSQL (parametrized), served on loopback.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from certs.build import build_certificate
from certs.jws import TYP_CERTIFICATE, envelope_bytes, sign
from certs.keys import SigningKey, endorse, init_org_key, init_station_key, install_endorsement
from certs.keys import public_pem as pem_of
from certs.model import Certificate, Station
from certs.settings import CertSettings
from hub.app import create_app
from hub.service import Hub
from hub.testing import PostgresUnavailable, create_database, postgres_cluster, serve_in_thread
from station.sync.config import SyncConfig, write_token
from tests.fixtures.certs import records

_RECORD = records.verified()
_FAILED = records.failed_bad_ranges()


@dataclass
class Org:
    key: SigningKey
    key_dir: Path

    @property
    def pem(self) -> bytes:
        return pem_of(self.key.public).encode()


@dataclass
class Kit:
    """A station: its TABULA_HOME, key, endorsement, and the chain state of the certificates minted."""

    station_id: str
    home: Path
    key: SigningKey
    endorsement: bytes
    sequence: int = 0
    previous: str | None = None
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    token: str = ""

    @property
    def cert_dir(self) -> Path:
        return self.home / "certs"

    def certificate(
        self, *, success: bool = True, serial: str | None = None, asset: str | None = None
    ) -> Certificate:
        n = next(self.counter)
        self.sequence += 1
        station = Station(
            id=self.station_id, kid=self.key.kid, sequence=self.sequence, previous=self.previous
        )
        cert = build_certificate(
            _RECORD if success else _FAILED,
            settings=CertSettings(technician="Test", asset_number=asset or f"{self.station_id}-PC-{n:05d}"),
            station=station,
            certificate_id=str(uuid.uuid4()),
        )
        media = dataclasses.replace(cert.media, serial=serial or f"{self.station_id}-SN-{n:05d}")
        return dataclasses.replace(cert, media=media)

    def sign(self, cert: Certificate) -> bytes:
        env = sign(
            cert.to_dict(), self.key.private, TYP_CERTIFICATE, {"endorsement": _json(self.endorsement)}
        )
        self.previous = env.digest
        return envelope_bytes(env)

    def mint(self, count: int, **kw: object) -> list[Path]:
        """Write ``count`` chained, signed certificates to the cert dir; returns their paths in order."""
        self.cert_dir.mkdir(parents=True, exist_ok=True)
        out = []
        for _ in range(count):
            cert = self.certificate(**kw)  # type: ignore[arg-type]
            path = self.cert_dir / f"{cert.certificate_id}.json"
            path.write_bytes(self.sign(cert))
            out.append(path)
        return out

    def config(self, url: str, **kw: object) -> SyncConfig:
        token_file = self.home / "sync" / "token"
        write_token(token_file, self.token)
        return SyncConfig(url=url, token_file=token_file, **kw)  # type: ignore[arg-type]


def _json(data: bytes) -> object:
    import json

    return json.loads(data)


def make_org(root: Path, name: str = "Atelier Réemploi") -> Org:
    key_dir = root / f"org-{name[:8].replace(' ', '_')}"
    return Org(key=init_org_key(key_dir, name), key_dir=key_dir)


def make_kit(root: Path, org: Org, station_id: str) -> Kit:
    home = root / station_id
    keys = home / "keys"
    key = init_station_key(keys, station_id)
    endorsement = envelope_bytes(endorse(org.key, station_id, key.public))
    install_endorsement(keys, endorsement)
    return Kit(station_id=station_id, home=home, key=key, endorsement=endorsement)


def enrolled(hub: Hub, org: Org, kit: Kit) -> Kit:
    _, kit.token = hub.enroll(kit.endorsement)
    return kit


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL cluster for the whole session; in CI its absence is a failure, never a skip."""
    try:
        with postgres_cluster() as url:
            yield url
    except PostgresUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {e.diagnostics()}")
        pytest.skip(f"PostgreSQL unavailable: {e.message}")


_db_counter = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    admin = request.getfixturevalue("pg_admin_url")
    return create_database(admin, f"hub_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def hub(db_url: str) -> Iterator[Hub]:
    h = Hub(db_url)
    yield h
    h.engine.dispose()


@pytest.fixture
def org(tmp_path: Path, hub: Hub) -> Org:
    o = make_org(tmp_path)
    hub.add_organisation(o.key.name, o.pem)
    return o


@pytest.fixture
def kit(tmp_path: Path, hub: Hub, org: Org) -> Kit:
    return enrolled(hub, org, make_kit(tmp_path, org, "bench-1"))


@pytest.fixture
def hub_url(hub: Hub) -> Iterator[str]:
    with serve_in_thread(create_app(hub)) as url:
        yield url
