"""The certificate: one schema-versioned, signed record per erased (or not erased) drive.

It carries every field of the NIST SP 800-88 Rev.1 sample certificate (section 4.8 / Appendix G)
and of Rev.2's sample (Appendix C): the person performing sanitization, the media, the sanitization
(method type, method, technique, tool and version, each step), its verification, errors, the
destination, an optional drive health summary, an optional validation by a second person, UTC
timestamps and a UUID.  It also carries the station chain fields (sequence number and hash of the
previous certificate) that make a deleted, duplicated or reordered certificate detectable.

Models validate on construction, like :mod:`erase.record`: a certificate claiming success for a
failed, interrupted or unverified job cannot be built, and neither can one whose achieved level
exceeds what its steps achieved.  :meth:`Certificate.from_dict` reads a payload strictly: unknown or
missing keys, wrong types and values outside their vocabulary are schema errors.

The *sanitization* section is a list of steps of kind ``overwrite`` (one per pass) or ``firmware``
(ATA/NVMe/SCSI sanitize, secure erase, crypto erase; added by the purge work).  Each step states the
NIST level requested and achieved (``none`` / ``clear`` / ``purge``) and, when achieved is lower,
why (``note``).
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

from certs import limits
from certs.errors import InvalidCertificate, SchemaError

SCHEMA = "tabula.certificate/2"
#: The first format: no ``media.lot``.  Certificates issued in it keep verifying (tests/fixtures/certs/golden).
SCHEMA_V1 = "tabula.certificate/1"
SCHEMAS = (SCHEMA, SCHEMA_V1)

Kind = Literal["certificate", "failure_report"]
Level = Literal["none", "clear", "purge"]
RequestedLevel = Literal["clear", "purge"]
StepKind = Literal["overwrite", "firmware"]
Outcome = Literal["verified", "unverified", "failed", "interrupted"]
VerifyResult = Literal["passed", "failed", "not_performed", "incomplete"]
HiddenStatus = Literal["not_checked", "none", "present", "removed", "unsupported"]
Destination = Literal["internal_reuse", "external_reuse", "recycling", "manufacturer", "other"]
BackedUp = Literal["yes", "no", "unknown"]
RangeOp = Literal["write", "read", "verify"]

LEVEL_RANK = {"none": 0, "clear": 1, "purge": 2}
NIST_METHOD_TYPE = {"clear": "Clear", "purge": "Purge"}

_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


def check_url(url: str | None) -> None:
    """A signed verification address (the QR code's link): absent, or a plain http(s) URL."""
    if url is None:
        return
    limits.check_text("verification URL", url, limits.URL_MAX)
    if not url.startswith(("https://", "http://")) or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidCertificate(f"verification_url must be an http(s) URL without spaces, got {url[:80]!r}")


def _ts(value: str | None, name: str, *, optional: bool = False) -> None:
    if value is None:
        if optional:
            return
        raise InvalidCertificate(f"{name} is required")
    if not _TS.match(value):
        raise InvalidCertificate(f"{name} must be a UTC timestamp like 2025-01-31T12:00:00Z, got {value!r}")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidCertificate(f"{name} is not a valid date: {value!r}") from e


def _nonneg(value: int | None, name: str) -> None:
    if value is not None and value < 0:
        raise InvalidCertificate(f"{name} cannot be negative")


def _pow2(value: int, name: str) -> None:
    if value <= 0 or value & (value - 1):
        raise InvalidCertificate(f"{name} must be a power of two, got {value}")


@dataclass(frozen=True)
class Person:
    """The person performing (or validating) sanitization."""

    name: str
    title: str
    organisation: str
    location: str
    contact: str  # phone or e-mail

    def __post_init__(self) -> None:
        for key in ("name", "title", "organisation", "location", "contact"):
            label, limit = limits.OPERATOR_FIELDS[key]
            limits.check_text(label, getattr(self, key), limit)


@dataclass(frozen=True)
class Validation:
    """Optional validation (Rev.1: 'validation'; Rev.2: 'concurrence') by a second person."""

    person: Person
    date: str

    def __post_init__(self) -> None:
        _ts(self.date, "validation.date")


@dataclass(frozen=True)
class HiddenArea:
    """State of host-protected / device-configuration areas (HPA, DCO, AMA).

    ``not_checked`` says explicitly that nobody looked: it is never silently read as 'none'.
    """

    status: HiddenStatus = "not_checked"
    hpa_bytes: int | None = None
    dco_bytes: int | None = None
    details: str = ""

    def __post_init__(self) -> None:
        _nonneg(self.hpa_bytes, "hpa_bytes")
        _nonneg(self.dco_bytes, "dco_bytes")
        if self.status == "not_checked" and (self.hpa_bytes is not None or self.dco_bytes is not None):
            raise InvalidCertificate("a hidden area that was not checked has no size")


@dataclass(frozen=True)
class Media:
    manufacturer: str | None
    model: str | None
    serial: str | None
    wwn: str | None
    firmware: str | None
    media_type: str  # hdd, ssd, nvme, usb, mmc, virtual, unknown
    interface: str  # sata, nvme, usb, ...
    rotational: bool
    removable: bool
    asset_number: str  # property number of the donated machine ('' when not given)
    source: str  # donor
    classification: str
    data_backed_up: BackedUp
    backup_location: str
    native_bytes: int | None  # full native capacity (None: hidden areas not checked)
    accessible_bytes: int  # capacity the host could address (what was overwritten)
    logical_sector_size: int
    physical_sector_size: int
    hidden_before: HiddenArea
    hidden_after: HiddenArea
    lot: str | None = None  # the donation lot's reference (schema /2; None: not given); host/refs.py

    def __post_init__(self) -> None:
        limits.check_text("asset number", self.asset_number, limits.ASSET_NUMBER_MAX)
        limits.check_lot(self.lot)
        limits.check_text("donor", self.source, limits.DONOR_MAX)
        for key in limits.DRIVE_FIELDS:
            limits.check_text(f"drive {key}", getattr(self, key), limits.DRIVE_FIELD_MAX, nul=False)
        _nonneg(self.accessible_bytes, "accessible_bytes")
        _nonneg(self.native_bytes, "native_bytes")
        if self.native_bytes is not None and self.native_bytes < self.accessible_bytes:
            raise InvalidCertificate("native capacity cannot be smaller than the accessible capacity")
        _pow2(self.logical_sector_size, "logical_sector_size")
        _pow2(self.physical_sector_size, "physical_sector_size")


@dataclass(frozen=True)
class Tool:
    name: str
    version: str


@dataclass(frozen=True)
class ByteRange:
    offset: int
    length: int
    op: RangeOp
    error: str

    def __post_init__(self) -> None:
        if self.offset < 0 or self.length <= 0:
            raise InvalidCertificate(f"invalid byte range offset={self.offset} length={self.length}")


@dataclass(frozen=True)
class PatternInfo:
    kind: Literal["bytes", "prng"]
    hex: str | None
    seed: str | None
    label: str

    def __post_init__(self) -> None:
        if self.kind == "bytes" and (self.hex is None or self.seed is not None or not _HEX.match(self.hex)):
            raise InvalidCertificate("a byte pattern has lowercase hex and no seed")
        if self.kind == "prng" and (self.seed is None or self.hex is not None or not _HEX.match(self.seed)):
            raise InvalidCertificate("a prng pattern has a hex seed and no byte pattern")


@dataclass(frozen=True)
class Step:
    """One sanitization step: an overwrite pass, or a firmware command (sanitize, secure erase...).

    Overwrite steps carry ``pattern``, ``bytes_total``, ``bytes_written``, ``resumed`` and
    ``bad_ranges``; firmware steps carry ``command`` and ``status`` (what the drive reported).
    ``note`` explains an achieved level lower than requested (e.g. 'pass not verified',
    'drive reports sanitize failure', 'frozen: fell back to overwrite').
    """

    index: int
    kind: StepKind
    technique: str
    level_requested: RequestedLevel
    level_achieved: Level
    note: str
    started_at: str
    finished_at: str | None
    completed: bool
    tool: Tool
    pattern: PatternInfo | None = None
    bytes_total: int | None = None
    bytes_written: int | None = None
    resumed: int = 0
    bad_ranges: tuple[ByteRange, ...] = ()
    command: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bad_ranges", tuple(self.bad_ranges))
        where = f"step {self.index + 1}"
        if self.index < 0:
            raise InvalidCertificate(f"{where}: negative index")
        _ts(self.started_at, f"{where} started_at")
        _ts(self.finished_at, f"{where} finished_at", optional=True)
        if self.completed and self.finished_at is None:
            raise InvalidCertificate(f"{where}: a completed step has an end time")
        if self.kind == "overwrite":
            self._check_overwrite(where)
        else:
            self._check_firmware(where)
        if self.resumed < 0:
            raise InvalidCertificate(f"{where}: negative resume count")
        self._check_levels(where)

    def _check_overwrite(self, where: str) -> None:
        if self.pattern is None or self.bytes_total is None or self.bytes_written is None:
            raise InvalidCertificate(f"{where}: an overwrite step records its pattern and bytes")
        if self.command is not None or self.status is not None:
            raise InvalidCertificate(f"{where}: an overwrite step has no firmware command")
        if not 0 <= self.bytes_written <= self.bytes_total:
            raise InvalidCertificate(f"{where}: bytes_written out of range")
        if self.completed and self.bytes_written != self.bytes_total:
            raise InvalidCertificate(f"{where}: complete with {self.bytes_written}/{self.bytes_total} bytes")
        if self.level_achieved == "purge":
            raise InvalidCertificate(f"{where}: an overwrite through the host interface cannot reach Purge")

    def _check_firmware(self, where: str) -> None:
        if self.command is None or self.status is None:
            raise InvalidCertificate(f"{where}: a firmware step records its command and the drive's status")
        if self.pattern is not None or self.bytes_total is not None or self.bytes_written is not None:
            raise InvalidCertificate(f"{where}: a firmware step has no overwrite pattern or byte count")

    def _check_levels(self, where: str) -> None:
        if LEVEL_RANK[self.level_achieved] > LEVEL_RANK[self.level_requested]:
            raise InvalidCertificate(f"{where}: achieved level exceeds the requested level")
        if self.level_achieved != "none" and (not self.completed or self.bad_ranges):
            raise InvalidCertificate(f"{where}: an incomplete step or one with errors achieves no level")
        if LEVEL_RANK[self.level_achieved] < LEVEL_RANK[self.level_requested] and not self.note:
            raise InvalidCertificate(f"{where}: say why the achieved level is lower than requested")


@dataclass(frozen=True)
class Sanitization:
    method_type: Literal["Clear", "Purge"]  # NIST 'method type' (Rev.1 also lists Damage, Destruct)
    level_requested: RequestedLevel
    level_achieved: Level
    level_note: str  # why achieved < requested ('' when equal)
    method: str  # Tabula method name, e.g. 'zero', 'dod-short'
    method_details: str  # human description: passes, rounds, final blank
    technique: str  # 'overwrite', 'firmware', 'firmware+overwrite'
    tool: Tool
    steps: tuple[Step, ...]
    post_classification: str
    notes: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise InvalidCertificate("sanitization needs at least one step")
        if [s.index for s in self.steps] != list(range(len(self.steps))):
            raise InvalidCertificate("sanitization steps must be numbered 0, 1, 2... in order")
        if self.method_type != NIST_METHOD_TYPE[self.level_requested]:
            raise InvalidCertificate("the NIST method type must match the requested level")
        best = max(LEVEL_RANK[s.level_achieved] for s in self.steps)
        if LEVEL_RANK[self.level_achieved] > best:
            raise InvalidCertificate(f"level '{self.level_achieved}' is more than any step achieved")
        if LEVEL_RANK[self.level_achieved] > LEVEL_RANK[self.level_requested]:
            raise InvalidCertificate("achieved level exceeds the requested level")
        if LEVEL_RANK[self.level_achieved] < LEVEL_RANK[self.level_requested] and not self.level_note:
            raise InvalidCertificate("say why the achieved level is lower than requested")


@dataclass(frozen=True)
class Check:
    """One verification read-back of one pass."""

    pass_index: int
    mode: Literal["full", "sample"]
    bytes_total: int
    bytes_checked: int
    coverage_ppm: int  # bytes_checked / bytes_total in parts per million, rounded down
    passed: bool
    started_at: str
    finished_at: str
    seed: str | None
    subsections: int | None
    mismatch_count: int
    mismatches: tuple[ByteRange, ...]
    read_errors: tuple[ByteRange, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "mismatches", tuple(self.mismatches))
        object.__setattr__(self, "read_errors", tuple(self.read_errors))
        _ts(self.started_at, "verification started_at")
        _ts(self.finished_at, "verification finished_at")
        if not 0 <= self.bytes_checked <= self.bytes_total:
            raise InvalidCertificate("bytes_checked out of range")
        expected = self.bytes_checked * 1_000_000 // self.bytes_total if self.bytes_total else 0
        if self.coverage_ppm != expected:
            raise InvalidCertificate(
                f"coverage_ppm {self.coverage_ppm} does not match bytes checked ({expected})"
            )
        if self.mismatch_count < 0:
            raise InvalidCertificate("negative mismatch count")
        if self.passed and (self.mismatch_count or self.mismatches or self.read_errors):
            raise InvalidCertificate("a verification with mismatches or read errors cannot pass")
        if self.passed and self.mode == "full" and self.bytes_checked != self.bytes_total:
            raise InvalidCertificate("a full verification that did not read every byte cannot pass")
        if self.mode == "sample" and self.seed is None:
            raise InvalidCertificate("a sampled verification records its seed")


@dataclass(frozen=True)
class Verification:
    policy: Literal["none", "last", "all"]
    mode: Literal["full", "sample"]
    method: str  # human: 'full read-back of the last pass', 'sampled read-back (10.0 %)'
    result: VerifyResult
    checks: tuple[Check, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", tuple(self.checks))
        if self.result == "passed" and (not self.checks or not all(c.passed for c in self.checks)):
            raise InvalidCertificate("verification cannot be 'passed' unless every check passed")
        if self.result == "not_performed" and (self.checks or self.policy != "none"):
            raise InvalidCertificate("'not_performed' means no verification was asked or run")
        if self.result == "failed" and all(c.passed for c in self.checks):
            raise InvalidCertificate("a failed verification has a failed check")


@dataclass(frozen=True)
class Errors:
    bad_ranges: tuple[ByteRange, ...]  # unwritable ranges of every overwrite step
    bad_bytes: int  # total length of bad ranges

    def __post_init__(self) -> None:
        object.__setattr__(self, "bad_ranges", tuple(self.bad_ranges))
        if self.bad_bytes != sum(r.length for r in self.bad_ranges):
            raise InvalidCertificate("bad_bytes does not match the bad ranges")


@dataclass(frozen=True)
class DestinationInfo:
    kind: Destination
    details: str


@dataclass(frozen=True)
class Result:
    success: bool
    outcome: Outcome
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasons", tuple(self.reasons))
        if self.success and self.outcome != "verified":
            raise InvalidCertificate(f"an erasure that ended '{self.outcome}' is not a success")
        if not self.success and not self.reasons:
            raise InvalidCertificate("a failure report says why")


@dataclass(frozen=True)
class Station:
    """The issuing station and its place in the station's certificate chain."""

    id: str
    kid: str  # SHA-256 fingerprint of the station's public key (hex of the SPKI DER)
    sequence: int  # 1, 2, 3... per station key
    previous: str | None  # SHA-256 of the previous signed certificate (None for sequence 1)

    def __post_init__(self) -> None:
        if not self.id:
            raise InvalidCertificate("the station has an id")
        limits.check_text("station id", self.id, limits.STATION_ID_MAX)
        if not _HEX64.match(self.kid):
            raise InvalidCertificate("station kid must be 64 lowercase hex characters")
        if self.sequence < 1:
            raise InvalidCertificate("sequence numbers start at 1")
        limits.check_sequence(self.sequence)
        if (self.sequence == 1) != (self.previous is None):
            raise InvalidCertificate("only the first certificate has no previous hash")
        if self.previous is not None and not _HEX64.match(self.previous):
            raise InvalidCertificate("previous must be a SHA-256 hex digest")


@dataclass(frozen=True)
class Job:
    job_id: str
    started_at: str
    finished_at: str | None
    record_sha256: str  # SHA-256 of the job record (sorted-key JSON), links to the station journal

    def __post_init__(self) -> None:
        _ts(self.started_at, "job started_at")
        _ts(self.finished_at, "job finished_at", optional=True)
        if not _HEX64.match(self.record_sha256):
            raise InvalidCertificate("record_sha256 must be a SHA-256 hex digest")


@dataclass(frozen=True)
class Certificate:
    certificate_id: str  # UUID
    kind: Kind
    issued_at: str
    station: Station
    result: Result
    person: Person
    media: Media
    sanitization: Sanitization
    verification: Verification
    errors: Errors
    destination: DestinationInfo
    job: Job
    health: dict[str, Any] | None = None
    validation: Validation | None = None
    # Where the QR code of the PDF links (signed, so that a page's QR code cannot send a donor elsewhere);
    # absent in records from before it was signed, and when the station sets no address.
    verification_url: str | None = None
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise InvalidCertificate(f"unknown certificate schema {self.schema!r}")
        if self.schema == SCHEMA_V1 and self.media.lot is not None:
            raise InvalidCertificate(f"a {SCHEMA_V1} certificate has no lot (it came with {SCHEMA})")
        try:
            parsed = uuid.UUID(self.certificate_id)
        except ValueError as e:
            raise InvalidCertificate(f"certificate_id is not a UUID: {self.certificate_id!r}") from e
        if str(parsed) != self.certificate_id:
            raise InvalidCertificate("certificate_id must be a lowercase hyphenated UUID")
        _ts(self.issued_at, "issued_at")
        check_url(self.verification_url)
        if self.health is not None and not isinstance(self.health, dict):
            raise InvalidCertificate("health must be an object")
        problems = self.success_problems()
        if self.kind == "certificate":
            if problems:
                raise InvalidCertificate("this is not a successful erasure: " + "; ".join(problems))
        else:
            if self.result.success:
                raise InvalidCertificate("a failure report cannot claim success")
            if self.result.outcome == "verified":
                raise InvalidCertificate(
                    "a verified erasure is issued as a certificate, not a failure report"
                )
            if self.sanitization.level_achieved != "none":
                raise InvalidCertificate("a failure report achieves no sanitization level")

    def success_problems(self) -> list[str]:
        """Everything that stands between this record and a certified erasure (empty = success)."""
        out: list[str] = []
        if not self.result.success:
            out.append(f"outcome is '{self.result.outcome}'")
        if self.result.outcome != "verified":
            out.append("the erasure was not verified")
        if self.sanitization.level_achieved == "none":
            out.append("no NIST sanitization level was achieved")
        if self.verification.result != "passed":
            out.append(f"verification {self.verification.result.replace('_', ' ')}")
        if self.errors.bad_ranges:
            out.append(f"{len(self.errors.bad_ranges)} unwritable range(s)")
        for s in self.sanitization.steps:
            if not s.completed:
                out.append(f"step {s.index + 1} did not complete")
            if s.bad_ranges:
                out.append(f"step {s.index + 1} has unwritable ranges")
            if s.kind == "overwrite" and s.bytes_total != self.media.accessible_bytes:
                out.append(
                    f"step {s.index + 1} covered {s.bytes_total} of {self.media.accessible_bytes} bytes"
                )
        return out

    @property
    def success(self) -> bool:
        return self.kind == "certificate"

    def to_dict(self) -> dict[str, Any]:
        out = _to_json(self)
        assert isinstance(out, dict)
        return as_v1(out) if self.schema == SCHEMA_V1 else out

    @classmethod
    def from_dict(cls, data: Any) -> Certificate:
        """Strictly read a payload; any deviation from the schema raises :class:`SchemaError`.

        A ``tabula.certificate/1`` payload is read as it was written (:func:`from_v1`): without
        ``media.lot`` (refused with one, as the first verifier did), with or without
        ``verification_url``.
        """
        if not isinstance(data, dict):
            raise SchemaError("the payload is not a JSON object")
        schema = data.get("schema")
        if schema not in SCHEMAS:
            raise SchemaError(
                f"unknown certificate schema {schema!r} (this verifier reads {SCHEMA} and {SCHEMA_V1})"
            )
        if schema == SCHEMA_V1:
            data = from_v1(data)
        result = _reader(cast(Any, cls))(data, None)
        assert isinstance(result, Certificate)
        return result


# --- generic, strict (de)serialization driven by the dataclass type hints ----------------------------


def from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A payload of the first format (certificate or destruction record ``/1``), readable by the strict
    reader of the current one.

    It has no ``media.lot`` (one that does is refused: an unknown field, as the first verifier said).
    Its ``verification_url`` is absent when it was signed before the QR code's link was (read as
    None), or present (the link signed, still in ``/1``, just before lots came).
    """
    data = before_field(data, "media", "lot")
    return data if "verification_url" in data else {**data, "verification_url": None}


def as_v1(out: dict[str, Any]) -> dict[str, Any]:
    """``to_dict`` of a ``/1`` record: without the lot, and without a link it did not sign."""
    del out["media"]["lot"]
    if out.get("verification_url") is None:
        out.pop("verification_url", None)
    return out


def before_field(data: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    """A payload of a format that had no ``section.key``, made readable by the newer strict reader.

    The field must be absent (the older format did not know it: present, it is an unknown field, as the
    older verifier said); it is read as None, and ``to_dict`` drops it again for that format.
    """
    inner = data.get(section)
    if not isinstance(inner, dict):
        return data  # the strict reader says what is wrong with it
    if key in inner:
        raise _fail((None, section), f"unknown field(s) {key}")
    return {**data, section: {**inner, key: None}}


def _to_json(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_json(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    return obj


JsonPath = tuple[Any, ...] | None  # (parent, key) links, rendered only when an error is raised
Reader = Callable[[Any, JsonPath], Any]


def _render(path: JsonPath) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "$" + "".join(reversed(parts))


def _fail(path: JsonPath, message: str) -> SchemaError:
    return SchemaError(f"{_render(path)}: {message}")


def _scalar_reader(tp: type) -> Reader:
    want = {str: "a string", bool: "true/false", int: "an integer"}[tp]

    def read_scalar(value: Any, path: JsonPath) -> Any:
        if type(value) is not tp:
            raise _fail(path, f"expected {want}, got {_type_name(value)}")
        return value

    return read_scalar


def _choice_reader(tp: Any) -> Reader:
    choices = frozenset(get_args(tp))
    shown = ", ".join(map(str, get_args(tp)))

    def read_choice(value: Any, path: JsonPath) -> Any:
        if type(value) is not str or value not in choices:
            raise _fail(path, f"expected one of {shown}, got {value!r}")
        return value

    return read_choice


def _optional_reader(tp: Any) -> Reader:
    args = [a for a in get_args(tp) if a is not type(None)]
    if len(args) != 1:
        raise TypeError(f"ambiguous union {tp!r}")  # schema programming error
    inner = _reader(args[0])

    def read_optional(value: Any, path: JsonPath) -> Any:
        return None if value is None else inner(value, path)

    return read_optional


def _tuple_reader(tp: Any) -> Reader:
    item = _reader(get_args(tp)[0])

    def read_tuple(value: Any, path: JsonPath) -> Any:
        if type(value) is not list:
            raise _fail(path, f"expected a list, got {_type_name(value)}")
        return tuple(item(v, (path, i)) for i, v in enumerate(value))

    return read_tuple


def _read_dict(value: Any, path: JsonPath) -> Any:
    if type(value) is not dict:
        raise _fail(path, f"expected an object, got {_type_name(value)}")
    return value


def _object_reader(cls: Any) -> Reader:
    hints = get_type_hints(cls)
    names = frozenset(hints)
    readers = {k: _reader(t) for k, t in hints.items()}

    def read_object(value: Any, path: JsonPath) -> Any:
        if type(value) is not dict:
            raise _fail(path, f"expected an object, got {_type_name(value)}")
        if value.keys() != names:
            unknown = sorted(set(value) - names)
            if unknown:
                raise _fail(path, f"unknown field(s) {', '.join(unknown)}")
            raise _fail(path, f"missing field(s) {', '.join(sorted(names - set(value)))}")
        kwargs = {k: readers[k](v, (path, k)) for k, v in value.items()}
        try:
            return cls(**kwargs)
        except InvalidCertificate as e:
            raise _fail(path, e.message) from e

    return read_object


@cache
def _reader(tp: Any) -> Reader:
    """A strict reader for one type, compiled once from the type hints (verification speed)."""
    origin = get_origin(tp)
    if tp in (str, bool, int):
        return _scalar_reader(tp)
    if origin is Literal:
        return _choice_reader(tp)
    if origin in (Union, types.UnionType):
        return _optional_reader(tp)
    if origin is tuple:
        return _tuple_reader(tp)
    if origin is dict:
        return _read_dict
    if isinstance(tp, type) and is_dataclass(tp):
        return _object_reader(tp)
    raise TypeError(f"unsupported type {tp!r}")  # schema programming error


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def new_certificate_id() -> str:
    return str(uuid.uuid4())
