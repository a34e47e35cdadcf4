"""The hub's database: SQLAlchemy 2.x, SQLite by default, PostgreSQL in production.

Tables (the schema is created and upgraded by Alembic: :mod:`hub.migrate`, ``hub/migrations``):

* ``organisations``: registered organisation public keys, with the name the administrator gave;
* ``stations``: enrolled station keys (a station *is* its key fingerprint ``kid``) with their
  endorsement, the SHA-256 of their token (never the token), the token's expiry, and the time and
  reason of a revocation.  Among the stations that are not revoked, ``(organisation, station_id)``
  is unique;
* ``certificates``: the signed bytes plus indexed facts.  The database itself enforces each station
  key's chain: ``(station_kid, sequence)`` is unique (one certificate per place) and
  ``(station_kid, previous)`` is unique (two certificates with one predecessor are a fork);
* ``reports``: diagnostics reports (unsigned JSON; the id is the SHA-256 of the bytes);
* the transparency log (:mod:`hub.tlog`): ``log_keys`` (the log's signing key), ``log_state`` (one
  row: the tree size, root and latest signed tree head), ``log_entries`` (leaf index -> certificate),
  ``log_nodes`` (the hash of every complete subtree, ``(level, idx)``; level 0 are the leaf hashes) and
  ``log_queue`` (certificates stored but not yet appended);
* ``chain_heads``: every signed chain head a station published (append-only);
* donation lots (:mod:`hub.lots`): ``lots`` (per organisation, a unique reference, the donor, the
  contact as personal data erased by the retention rule, the hash of the donor page's capability
  token), ``devices`` (an asset number unique per organisation, in one lot) and ``device_events``
  (received, repaired, outcome; "diagnosed", "drive erased" and "drive destroyed" are read from the
  reports and signed records that carry the device's asset number);
* ``staff_tokens``: tokens of people (roles ``staff`` and ``coordinator``), stored as SHA-256 like
  the stations' tokens.

Organisations also hold the latest revocation list they signed (the exact bytes).

Free-text columns are ``TEXT``: their sizes are bounded by :mod:`certs.limits`, which the
certificate model enforces, so every certificate that verifies is storable.  Sequence numbers are
64-bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from certs.limits import STATION_ID_MAX

#: Execution option asking a SQLite transaction to start with ``BEGIN IMMEDIATE`` (ingest).
IMMEDIATE = "tabula_begin_immediate"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


@dataclass(frozen=True)
class StationInfo:
    """An authenticated station (detached from the database session)."""

    pk: int
    station_id: str
    kid: str
    organisation_id: int
    organisation: str  # the registered name


@dataclass(frozen=True)
class StaffInfo:
    """An authenticated person (staff token), detached from the session.  ``organisation_id`` is None
    for a network coordinator (every organisation's statistics, no lot management)."""

    pk: int
    name: str
    role: str
    organisation_id: int | None
    organisation: str | None


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The newest revocation list the organisation signed (certs.revocation), byte for byte.
    revocation_list: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    revocation_list_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revocation_list_issued_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    revocation_list_received_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (
        Index(
            "uq_stations_active_id",
            "organisation_id",
            "station_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX), index=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    endorsement: Mapped[str] = mapped_column(Text)  # the endorsement JWS (JSON text)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CertificateRow(Base):
    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("station_kid", "sequence", name="uq_certificates_chain_place"),
        Index("uq_certificates_chain_link", "station_kid", "previous", unique=True),
        Index("ix_certificates_serial", "serial"),
        Index("ix_certificates_asset_number", "asset_number"),
        Index("ix_certificates_station", "station_pk", "sequence"),
        Index("ix_certificates_station_name", "station_name", "sequence"),
    )

    certificate_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    station_pk: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    station_kid: Mapped[str] = mapped_column(String(64))
    station_name: Mapped[str] = mapped_column(Text)
    sequence: Mapped[int] = mapped_column(BigInteger)
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the compact JWS (chain, QR code)
    body_sha256: Mapped[str] = mapped_column(String(64))  # SHA-256 of the uploaded bytes (idempotency)
    kind: Mapped[str] = mapped_column(String(32))
    success: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    level_achieved: Mapped[str] = mapped_column(String(16))
    serial: Mapped[str | None] = mapped_column(Text, nullable=True)
    wwn: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    manufacturer: Mapped[str | None] = mapped_column(Text, nullable=True)
    asset_number: Mapped[str] = mapped_column(Text)
    # The lot reference the signed record carries (absent from records made before lots).
    lot: Mapped[str | None] = mapped_column(Text, nullable=True)
    issued_at: Mapped[str] = mapped_column(String(32))
    trust: Mapped[str] = mapped_column(Text)
    # The signed bytes as uploaded; empty once the personal data was removed on request (the facts
    # above, the digest and body_sha256 stay: the chain and the donor's own copy still check).
    body: Mapped[bytes] = mapped_column(LargeBinary)
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReportRow(Base):
    __tablename__ = "reports"

    __table_args__ = (Index("ix_reports_asset_number", "asset_number"),)

    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the body
    station_pk: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Read from the report when it carries them (hub.lotfacts.report_keys): how it links to a device.
    asset_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    lot: Mapped[str | None] = mapped_column(Text, nullable=True)


# SQLite gives an autoincrementing rowid only to an INTEGER PRIMARY KEY; PostgreSQL gets 64 bits.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LogKey(Base):
    """The transparency log's signing key (Ed25519).  The private key never leaves the database:
    no route serves it, nothing logs it (see hub/README.md, "Transparency log")."""

    __tablename__ = "log_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_pem: Mapped[str] = mapped_column(Text)
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LogState(Base):
    """One row (``id`` 1): the log's size, root and latest signed tree head."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("log_keys.id"))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(32))
    tree_head: Mapped[str] = mapped_column(Text)  # the signed tree head (JWS, JSON text)


class LogEntry(Base):
    __tablename__ = "log_entries"

    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.certificate_id"), unique=True)
    appended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LogNode(Base):
    """The hash of the complete subtree of leaves ``[idx * 2**level, (idx + 1) * 2**level)``."""

    __tablename__ = "log_nodes"
    __table_args__ = (
        Index(
            "uq_log_nodes_leaf_hash",
            "hash",
            unique=True,
            sqlite_where=text("level = 0"),
            postgresql_where=text("level = 0"),
        ),
    )

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class LogQueue(Base):
    """Certificates stored but not yet in the log (appended in ``id`` order by :mod:`hub.tlog`)."""

    __tablename__ = "log_queue"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.certificate_id"), unique=True)
    digest: Mapped[str] = mapped_column(String(64))


class ChainHeadRow(Base):
    """A chain head a station published (certs.chainhead): every one is kept, none is changed."""

    __tablename__ = "chain_heads"
    __table_args__ = (Index("ix_chain_heads_station", "station_kid", "sequence"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    station_pk: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    station_kid: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and use the psycopg 3 driver for it."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_events(engine: Engine) -> None:
    """WAL, full fsync, foreign keys; and transactions that start when *we* say, as we say.

    pysqlite opens transactions lazily (DEFERRED, at the first write), which lets two ingests read
    the same "no neighbour" state.  Here the driver's own transaction handling is off and SQLAlchemy's
    ``begin`` emits ``BEGIN IMMEDIATE`` for connections carrying the :data:`IMMEDIATE` option (the
    ingest path: one writer at a time, and it reads under its write lock) and ``BEGIN`` otherwise.
    """

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, pool_size: int = 20, sqlite_busy_timeout: float = 30.0) -> Engine:
    url = normalise_url(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": sqlite_busy_timeout}
    else:
        # No pre-ping (a round trip per request): a connection lost to a database restart fails
        # one request with 503 (the client retries) and SQLAlchemy then replaces the pool.
        # pool_size: what 16 parallel uploads hold at once (a write connection each, plus the log's
        # and the token lookups'); a smaller pool closed and reopened connections under that load
        # (a PostgreSQL backend start each: measured by bench/hub_scale.py).
        kwargs.update(pool_size=pool_size, max_overflow=pool_size // 2, pool_timeout=10, pool_recycle=1800)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _sqlite_events(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


class StaffToken(Base):
    """A person's token: ``staff`` (an organisation's lots) or ``coordinator`` (its statistics; with
    no organisation, the whole network's).  Only the SHA-256 of the token is stored."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lot(Base):
    """A donation lot.  ``contact`` is personal data: erased (``contact_erased_at``) by the retention
    rule (``station-hub retention``) once the lot has been closed long enough."""

    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("organisation_id", "reference", name="uq_lots_reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    reference: Mapped[str] = mapped_column(String(64))
    donor_name: Mapped[str] = mapped_column(Text)
    donor_kind: Mapped[str] = mapped_column(String(16))
    received_on: Mapped[str] = mapped_column(String(10))  # ISO date
    contact: Mapped[str | None] = mapped_column(Text, nullable=True)
    contact_erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    donor_token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("organisation_id", "asset_number", name="uq_devices_asset"),
        Index("ix_devices_lot", "lot_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    asset_number: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(Text, nullable=True)
    model: Mapped[str | None] = mapped_column(Text, nullable=True)
    serial: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceEvent(Base):
    """What people and stations record of a device: received, repaired, outcome (append-only; the
    newest outcome is the device's outcome)."""

    __tablename__ = "device_events"
    __table_args__ = (Index("ix_device_events_device", "device_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
