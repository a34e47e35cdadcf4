"""The destruction record: a drive that could not be sanitized was physically destroyed.

NIST SP 800-88's answer to media that cannot be cleared or purged is *Destroy*.  When an erasure
fails (a drive with dead sectors, a drive that stops answering, a firmware that refuses), the
technician destroys the drive (shred, drill, crush, degauss, incinerate) and records it.  The station
signs that record like every other: an Ed25519 JWS of its own type (``tabula-destruction+json``,
payload ``tabula.destruction/2``: ``/1`` without the lot, still read), numbered in the station's chain with the certificates, with an A4
PDF that carries it.

It is linked to the failed erasure: the job id and, when the job has one, the signed failure report's
id and SHA-256 (the hash of its compact JWS, as the chain and the QR code use).  It never says the
drive was erased: ``station verify`` reports it as a destruction, never as an erasure certificate.

Like :mod:`certs.model`, the record validates on construction and :meth:`DestructionRecord.from_dict`
reads a payload strictly (the same reader: unknown or missing keys and wrong types are schema errors).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal, cast

from certs import limits
from certs.errors import InvalidCertificate, SchemaError
from certs.model import Person, Station, Tool, _reader, _to_json, _ts, as_v1, check_url, from_v1

SCHEMA = "tabula.destruction/2"
#: The first format: no ``media.lot``.  Records issued in it keep verifying.
SCHEMA_V1 = "tabula.destruction/1"
SCHEMAS = (SCHEMA, SCHEMA_V1)

DestructionMethod = Literal["shred", "drill", "crush", "degauss", "incinerate"]
METHODS: tuple[DestructionMethod, ...] = ("shred", "drill", "crush", "degauss", "incinerate")
FailedOutcome = Literal["failed", "interrupted", "unverified"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
PATH_MAX = 1024  # the photo's path as the technician gave it
NOTES_MAX = 2000


@dataclass(frozen=True)
class DestroyedMedia:
    """The drive, as its failed job planned it (identity, not the /dev name)."""

    manufacturer: str | None
    model: str | None
    serial: str | None
    wwn: str | None
    media_type: str
    interface: str
    size_bytes: int
    asset_number: str
    source: str
    lot: str | None = None  # the donation lot's reference (schema /2; None: not given); host/refs.py

    def __post_init__(self) -> None:
        limits.check_text("asset number", self.asset_number, limits.ASSET_NUMBER_MAX)
        limits.check_lot(self.lot)
        limits.check_text("donor", self.source, limits.DONOR_MAX)
        for key in ("manufacturer", "model", "serial", "wwn"):
            limits.check_text(f"drive {key}", getattr(self, key), limits.DRIVE_FIELD_MAX, nul=False)
        if self.size_bytes < 0:
            raise InvalidCertificate("size_bytes cannot be negative")


@dataclass(frozen=True)
class Photo:
    """A photograph of the destroyed drive: where it was, and its SHA-256 when it could be read."""

    path: str
    sha256: str | None

    def __post_init__(self) -> None:
        if not self.path:
            raise InvalidCertificate("a photo has a path")
        limits.check_text("photo path", self.path, PATH_MAX)
        if self.sha256 is not None and not _HEX64.match(self.sha256):
            raise InvalidCertificate("the photo's sha256 must be 64 lowercase hex characters")


@dataclass(frozen=True)
class Destruction:
    method: DestructionMethod
    performed_by: str
    witness: str
    destroyed_at: str
    photo: Photo | None
    notes: str

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InvalidCertificate(f"unknown destruction method {self.method!r}")
        if not self.performed_by.strip():
            raise InvalidCertificate("a destruction record names who destroyed the drive")
        limits.check_text("name of who destroyed it", self.performed_by, limits.PERSON_FIELD_MAX)
        limits.check_text("witness", self.witness, limits.PERSON_FIELD_MAX)
        limits.check_text("notes", self.notes, NOTES_MAX)
        _ts(self.destroyed_at, "destroyed_at")


@dataclass(frozen=True)
class FailedJob:
    """The erasure that failed: its job, how it ended and why, and its signed failure report."""

    job_id: str
    outcome: FailedOutcome
    reasons: tuple[str, ...]
    report_id: str | None
    report_sha256: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if not self.job_id:
            raise InvalidCertificate("a destruction record names the failed job")
        if (self.report_id is None) != (self.report_sha256 is None):
            raise InvalidCertificate("the failure report is named by its id and its sha256 together")
        if self.report_sha256 is not None and not _HEX64.match(self.report_sha256):
            raise InvalidCertificate("report_sha256 must be 64 lowercase hex characters")


@dataclass(frozen=True)
class DestructionRecord:
    record_id: str  # UUID
    issued_at: str
    station: Station
    person: Person  # who recorded it at the station (the settings' technician)
    media: DestroyedMedia
    destruction: Destruction
    failed_job: FailedJob
    tool: Tool
    verification_url: str | None = None  # signed, as a certificate's (certs.model.Certificate)
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise InvalidCertificate(f"unknown destruction record schema {self.schema!r}")
        if self.schema == SCHEMA_V1 and self.media.lot is not None:
            raise InvalidCertificate(f"a {SCHEMA_V1} record has no lot (it came with {SCHEMA})")
        try:
            parsed = uuid.UUID(self.record_id)
        except ValueError as e:
            raise InvalidCertificate(f"record_id is not a UUID: {self.record_id!r}") from e
        if str(parsed) != self.record_id:
            raise InvalidCertificate("record_id must be a lowercase hyphenated UUID")
        _ts(self.issued_at, "issued_at")
        check_url(self.verification_url)

    @property
    def certificate_id(self) -> str:
        """The record's id, under the name every signed record of the chain shares."""
        return self.record_id

    @property
    def success(self) -> bool:
        """Never an erasure."""
        return False

    @property
    def kind(self) -> str:
        return "destruction"

    def to_dict(self) -> dict[str, Any]:
        out = _to_json(self)
        assert isinstance(out, dict)
        return as_v1(out) if self.schema == SCHEMA_V1 else out

    @classmethod
    def from_dict(cls, data: Any) -> DestructionRecord:
        """Strictly read a payload; any deviation from the schema raises :class:`SchemaError`."""
        if not isinstance(data, dict):
            raise SchemaError("the payload is not a JSON object")
        schema = data.get("schema")
        if schema not in SCHEMAS:
            raise SchemaError(
                f"unknown destruction record schema {schema!r} (this verifier reads {SCHEMA} and {SCHEMA_V1})"
            )
        if schema == SCHEMA_V1:
            data = from_v1(data)
        result = _reader(cast(Any, cls))(data, None)
        assert isinstance(result, DestructionRecord)
        return result


def build_destruction(
    *,
    record: Any,
    settings: Any,
    station: Station,
    method: str,
    performed_by: str,
    witness: str = "",
    destroyed_at: str,
    photo: Photo | None = None,
    notes: str = "",
    report_id: str | None = None,
    report_sha256: str | None = None,
    record_id: str,
    issued_at: str,
    lot: str | None = None,
    asset_number: str | None = None,
) -> DestructionRecord:
    """The destruction record of the failed job ``record`` (an :class:`erase.record.JobRecord`).

    ``lot`` and ``asset_number``, when given, replace those the job was planned with (the drive's
    machine identified at the bench after the erasure failed).

    A job that ended verified was erased: there is nothing to destroy instead, and no record is built.
    """
    outcome = str(record.outcome)
    if outcome not in ("failed", "interrupted", "unverified"):
        raise InvalidCertificate(
            f"job {record.plan.job_id} ended '{outcome}': only a drive that could not be sanitized gets a "
            "destruction record"
        )
    plan = record.plan
    return DestructionRecord(
        record_id=record_id,
        issued_at=issued_at,
        station=station,
        person=_person(plan.operator, settings),
        media=_media(plan.drive, _machine(plan.operator, lot, asset_number), settings),
        destruction=Destruction(
            method=cast(DestructionMethod, method),
            performed_by=performed_by,
            witness=witness,
            destroyed_at=destroyed_at,
            photo=photo,
            notes=notes,
        ),
        failed_job=FailedJob(
            job_id=plan.job_id,
            outcome=cast(FailedOutcome, outcome),
            reasons=tuple(record.reasons) or (f"the job ended '{outcome}'",),
            report_id=report_id,
            report_sha256=report_sha256,
        ),
        tool=Tool(name=plan.tool.get("name", "tabula"), version=plan.tool.get("version", "unknown")),
        verification_url=settings.verification_url or None,
    )


def _person(op: dict[str, str], settings: Any) -> Person:
    return Person(
        name=settings.technician or str(op.get("name", "")),
        title=settings.title,
        organisation=settings.organisation or str(op.get("organisation", "")),
        location=settings.location,
        contact=settings.contact,
    )


def _machine(op: dict[str, str], lot: str | None, asset_number: str | None) -> dict[str, str]:
    """The job's operator fields, with the lot and asset number given now in place of the planned ones."""
    given = {"lot": lot, "asset_number": asset_number}
    return dict(op) | {k: v for k, v in given.items() if v}


def _media(drive: Any, op: dict[str, str], settings: Any) -> DestroyedMedia:
    return DestroyedMedia(
        manufacturer=drive.vendor,
        model=drive.model,
        serial=drive.serial,
        wwn=drive.wwn,
        media_type=drive.media_type,
        interface=drive.transport,
        size_bytes=drive.size_bytes,
        asset_number=str(op.get("asset_number", "")) or settings.asset_number,
        source=str(op.get("donor", "")) or settings.donor,
        lot=str(op.get("lot", "")) or None,
    )
