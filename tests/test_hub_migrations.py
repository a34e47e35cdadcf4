"""Alembic upgrades a database made by the previous hub (before migrations), SQLite and PostgreSQL.

``LegacyBase`` below is hub/db.py as it was before migrations existed (frozen here): the test fills
such a database through it, runs ``station-hub migrate``, and checks the data and new constraints.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from certs.merkle import Frontier, leaf_hash
from certs.tlog import check_inclusion, read_log_key, read_log_proof, read_tree_head
from hub.cli import main as hub_main
from hub.db import CertificateRow, Station, make_engine, normalise_url
from hub.errors import HubError
from hub.migrate import MigrationRefused, SchemaOutOfDate, _config, current, head, upgrade
from hub.service import Hub
from hub.tlog import Logged
from tests.test_hub_support import cert_at
from tests.test_sync_support import Kit, db_url, make_kit, make_org, pg_admin_url  # noqa: F401


class LegacyBase(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


class LegacyOrganisation(LegacyBase):
    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyStation(LegacyBase):
    __tablename__ = "stations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(128), index=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    endorsement: Mapped[str] = mapped_column(Text)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyCertificate(LegacyBase):
    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("station_kid", "sequence", name="uq_certificates_chain_place"),
        Index("ix_certificates_serial", "serial"),
        Index("ix_certificates_asset_number", "asset_number"),
        Index("ix_certificates_station", "station_pk", "sequence"),
    )
    certificate_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    station_pk: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    station_kid: Mapped[str] = mapped_column(String(64))
    station_name: Mapped[str] = mapped_column(String(128))
    sequence: Mapped[int] = mapped_column(Integer)
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    digest: Mapped[str] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    success: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    level_achieved: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str | None] = mapped_column(String(200), nullable=True)
    wwn: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    manufacturer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    asset_number: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[str] = mapped_column(String(32))
    trust: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class LegacyReport(LegacyBase):
    __tablename__ = "reports"
    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_pk: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def _legacy_db(url: str, tmp_path: Path, *, fork: bool = False, twins: bool = False) -> list[Kit]:
    """A previous-version database with two organisations, three stations (one revoked), a chain."""
    engine = create_engine(normalise_url(url))
    LegacyBase.metadata.create_all(engine)
    orgs = [make_org(tmp_path / f"o{i}", f"Org {i}") for i in range(2)]
    kits = [make_kit(tmp_path / "o0", orgs[0], "bench-1"), make_kit(tmp_path / "o0", orgs[0], "bench-2")]
    kits.append(make_kit(tmp_path / "o1", orgs[1], "bench-1" if not twins else "bench-1"))
    if twins:
        kits.append(make_kit(tmp_path / "o0b", orgs[0], "bench-1"))  # a 2nd active key: old hub allowed it
    with Session(engine) as s, s.begin():
        for i, o in enumerate(orgs):
            s.add(LegacyOrganisation(id=i + 1, name=f"Org {i}", kid=o.key.kid, public_pem=o.pem.decode()))
        for i, k in enumerate(kits):
            org_pk = 2 if k.home.parent.name == "o1" else 1
            s.add(
                LegacyStation(
                    id=i + 1,
                    station_id=k.station_id,
                    kid=k.key.kid,
                    organisation_id=org_pk,
                    endorsement=k.endorsement.decode(),
                    token_sha256=hashlib.sha256(f"tok{i}".encode()).hexdigest(),
                    revoked=i == 1,
                )
            )
            k.token = f"tok{i}"
        s.flush()
        previous = None
        for n in range(1, 4):
            cid, body, digest = cert_at(kits[0], n, previous, serial=f"SN-{n}")
            s.add(_legacy_row(cid, body, digest, kits[0], 1, n, previous))
            previous = digest
        if fork:  # the old hub's race: two certificates after #1 (#2 and a "#4" linking to #1's hash)
            first = s.scalar(select(LegacyCertificate).where(LegacyCertificate.sequence == 1))
            assert first is not None
            cid, body, digest = cert_at(kits[0], 4, first.digest)
            s.add(_legacy_row(cid, body, digest, kits[0], 1, 4, first.digest))
        s.add(LegacyReport(report_id="ab" * 32, station_pk=1, body=b"{}"))
    engine.dispose()
    return kits


def _legacy_row(
    cid: str, body: bytes, digest: str, kit: Kit, pk: int, n: int, prev: str | None
) -> LegacyCertificate:
    return LegacyCertificate(
        certificate_id=cid,
        station_pk=pk,
        station_kid=kit.key.kid,
        station_name=kit.station_id,
        sequence=n,
        previous=prev,
        digest=digest,
        body_sha256=hashlib.sha256(body).hexdigest(),
        kind="certificate",
        success=True,
        outcome="verified",
        level_achieved="clear",
        serial=f"SN-{n}",
        wwn=None,
        model="M",
        manufacturer="V",
        asset_number=f"PC-{n}",
        issued_at="2026-11-01T10:00:00Z",
        trust="legacy",
        body=body,
    )


def test_a_previous_version_database_is_upgraded_with_its_data(db_url: str, tmp_path: Path) -> None:
    kits = _legacy_db(db_url, tmp_path)
    with pytest.raises(SchemaOutOfDate, match="station-hub migrate"):
        Hub(db_url)  # serve and the admin commands refuse an old schema
    assert hub_main(["stations", "--db", db_url]) == 2
    assert hub_main(["migrate", "--db", db_url]) == 0
    assert hub_main(["migrate", "--db", db_url]) == 0  # idempotent
    hub = Hub(db_url)
    assert current(hub.engine) == head()
    rows = {s["kid"]: s for s in hub.stations()}
    assert (
        rows[kits[1].key.kid]["revoked"]
        and "before the hub recorded" in rows[kits[1].key.kid]["revocation_reason"]
    )
    assert not rows[kits[0].key.kid]["revoked"]
    assert hub.count() == 3 and [f.row.sequence for f in hub.search(1, station="bench-1")] == [3, 2, 1]
    station = hub.authenticate("Bearer tok0")
    # The new constraints hold: a fork after #1 is refused by the database itself.
    first = hub.search(1, serial="SN-1")[0].row
    with pytest.raises(IntegrityError), hub.session() as s, s.begin():
        fork = CertificateRow(
            **{
                c: getattr(first, c)
                for c in (
                    "station_pk",
                    "station_kid",
                    "station_name",
                    "digest",
                    "body_sha256",
                    "kind",
                    "success",
                    "outcome",
                    "level_achieved",
                    "asset_number",
                    "issued_at",
                    "trust",
                    "body",
                )
            }
        )
        fork.certificate_id, fork.sequence, fork.previous = (
            "00000000-0000-4000-8000-000000000009",
            9,
            hub.search(1, serial="SN-2")[0].row.previous,
        )
        s.add(fork)
    # ...and a 64-bit sequence now fits (PostgreSQL's INTEGER column would refuse it).
    cid, body, _ = cert_at(kits[0], 2**40, "ef" * 32)
    assert hub.ingest_certificate(station, cid, body).created
    insp = inspect(hub.engine)
    assert "uq_stations_active_id" in {i["name"] for i in insp.get_indexes("stations")}
    assert "revoked" not in {c["name"] for c in insp.get_columns("stations")}
    with hub.session() as s:
        assert s.scalar(select(Station).where(Station.kid == kits[2].key.kid)) is not None
    hub.engine.dispose()


def test_an_upgrade_refuses_data_that_breaks_the_new_constraints(db_url: str, tmp_path: Path) -> None:
    _legacy_db(db_url, tmp_path, fork=True, twins=True)

    engine = make_engine(db_url)
    with pytest.raises(MigrationRefused) as err:
        upgrade(engine)
    assert (
        "a fork" in err.value.message and "active keys are enrolled as station 'bench-1'" in err.value.message
    )
    assert current(engine) == "0001"  # nothing changed
    engine.dispose()
    assert issubclass(MigrationRefused, HubError)


def test_hub_processes_starting_together_on_an_empty_database_create_it_once(db_url: str) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            Hub(db_url).engine.dispose()
        except BaseException as e:  # noqa: BLE001  (collected, asserted below)
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    hub = Hub(db_url)
    assert current(hub.engine) == head() and hub.count() == 0
    hub.engine.dispose()


def _at_0002(url: str) -> None:
    """An empty database at revision 0002 (the hub before the transparency log)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0002")
    engine.dispose()


def test_0003_backfills_the_log_in_received_order(db_url: str, tmp_path: Path) -> None:
    _at_0002(db_url)
    org = make_org(tmp_path / "o", "Org")
    kit = make_kit(tmp_path / "o", org, "bench-1")
    engine = make_engine(db_url)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    received = [5, 1, 4, 2, 3]  # stored out of sequence order: the log follows reception
    with Session(engine) as s, s.begin():
        s.execute(
            text(
                "INSERT INTO organisations (id, name, kid, public_pem, created_at) VALUES (1, 'Org', :k, :p, :t)"
            ),
            {"k": org.key.kid, "p": org.pem.decode(), "t": base},
        )
        s.execute(
            text(
                "INSERT INTO stations (id, station_id, kid, organisation_id, endorsement, token_sha256, created_at)"
                " VALUES (1, 'bench-1', :k, 1, :e, :h, :t)"
            ),
            {"k": kit.key.kid, "e": kit.endorsement.decode(), "h": "00" * 32, "t": base},
        )
        previous, digests = None, []
        for n in range(1, 6):
            cid, body, digest = cert_at(kit, n, previous)
            row = _legacy_row(cid, body, digest, kit, 1, n, previous)
            values = {c.name: getattr(row, c.name) for c in LegacyCertificate.__table__.columns}
            values["received_at"] = base + timedelta(minutes=received[n - 1])
            s.execute(CertificateRow.__table__.insert().values(**values))
            digests.append(digest)
            previous = digest
    assert current(engine) == "0002"
    assert upgrade(engine) == ("0002", "0004_lots")
    engine.dispose()
    hub = Hub(db_url)
    kid, _, pem = hub.log.key()
    keys = {kid: read_log_key(pem.encode(), "log key")[1]}
    head = read_tree_head(hub.log.latest().signed(), keys)
    in_order = [digests[received.index(m)] for m in sorted(received)]
    assert [e["sha256"] for e in hub.log.entries(0, 10)] == in_order
    f = Frontier()
    for d in in_order:
        f.append(leaf_hash(bytes.fromhex(d)))
    assert head.tree_size == 5 and head.root_hash == f.root()
    for d in digests:
        cid, digest, index = hub.log.find(sha256=d)
        check_inclusion(read_log_proof(hub.log.proof(cid, digest, Logged(index, hub.log.latest()))), d, keys)
    hub.engine.dispose()


def test_0003_on_an_empty_database_signs_the_empty_tree(db_url: str) -> None:
    hub = Hub(db_url)
    head = hub.log.latest()
    assert head.tree_size == 0 and head.root_hash == Frontier().root().hex()
    kid, _, pem = hub.log.key()
    assert read_tree_head(head.signed(), {kid: read_log_key(pem.encode(), "k")[1]}).tree_size == 0
    hub.engine.dispose()


def test_0004_links_reports_already_stored_to_their_asset_number(db_url: str, tmp_path: Path) -> None:
    """Reports received before lots existed are read again: the ones that carry an asset number and a
    lot link to devices; the others (and hostile ones) are left as they were."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0003_transparency_log")
    org = make_org(tmp_path / "o", "Org")
    kit = make_kit(tmp_path / "o", org, "bench-1")
    bodies = {
        "linked": b'{"schema": 1, "asset_number": "PC-7", "lot": "2026/A"}',
        "plain": b'{"schema": 1}',
        "hostile": b"[" * 5000,
    }
    with Session(engine) as s, s.begin():
        s.execute(
            text(
                "INSERT INTO organisations (id, name, kid, public_pem, created_at) VALUES (1, 'Org', :k, :p, :t)"
            ),
            {"k": org.key.kid, "p": org.pem.decode(), "t": _now()},
        )
        s.execute(
            text(
                "INSERT INTO stations (id, station_id, kid, organisation_id, endorsement, token_sha256, created_at)"
                " VALUES (1, 'bench-1', :k, 1, :e, :h, :t)"
            ),
            {"k": kit.key.kid, "e": kit.endorsement.decode(), "h": "00" * 32, "t": _now()},
        )
        for body in bodies.values():
            s.execute(
                text("INSERT INTO reports (report_id, station_pk, body, received_at) VALUES (:i, 1, :b, :t)"),
                {"i": hashlib.sha256(body).hexdigest(), "b": body, "t": _now()},
            )
    assert upgrade(engine) == ("0003_transparency_log", "0004_lots")
    with engine.connect() as conn:
        rows = dict(
            conn.execute(text("SELECT report_id, asset_number || '|' || lot FROM reports")).all()  # type: ignore[arg-type]
        )
    assert rows[hashlib.sha256(bodies["linked"]).hexdigest()] == "PC-7|2026/A"
    assert rows[hashlib.sha256(bodies["plain"]).hexdigest()] is None
    assert rows[hashlib.sha256(bodies["hostile"]).hexdigest()] is None
    insp = inspect(engine)
    assert {"lots", "devices", "device_events", "staff_tokens"} <= set(insp.get_table_names())
    assert "lot" in {c["name"] for c in insp.get_columns("certificates")}
    engine.dispose()
