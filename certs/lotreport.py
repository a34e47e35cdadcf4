"""The lot report: what became of every device of a donation lot, signed by the organisation.

A donor (a company, a public body, a household) gives a lot of devices.  The organisation's hub
follows each device from intake to outcome and, when asked, issues a **lot report**: every device,
each of its drives with the signed record that proves it was cleared (an erasure certificate, or a
destruction record), the device's outcome (reused, sold, recycled, destroyed), the lot's
environmental impact (:mod:`certs.impact`), and a link to the donor's page.  It is signed with the
**organisation key** in the same JWS scheme as certificates (``typ: tabula-lot-report+json``, payload
``tabula.lot-report/1`` in canonical JSON), so a donor or an auditor checks it offline with the
organisation's public key: ``station verify REPORT.json --certs DIR`` also checks that each record it
lists is in DIR (or in the hub's transparency log) and says what the report says.

The model validates on construction (an inconsistent report cannot be built) and
:meth:`LotReport.from_json` reads a payload strictly, with the certificate's reader
(:mod:`certs.model`): unknown or missing keys and wrong types are schema errors.  Rules:

* a drive names its certificate (or failure report) with its id, hash, NIST level achieved, date
  (the record's ``issued_at``) and result, and/or its destruction record with id, hash and date;
  it is *cleared* when its certificate is a verified erasure (level clear or purge) or it was
  destroyed;
* ``data_cleared`` of a device is true exactly when it has at least one drive and every drive is
  cleared (a device with no drive in its inventory is *not* declared cleared: nothing proves it);
* a reused device names a beneficiary category (:data:`BENEFICIARIES`), never a person; a recycled
  one names its WEEE channel;
* the impact counts exactly the devices whose outcome is ``reused``, per kind;
* no personal data: the donor's contact is never in a report.

The signer check (:func:`verify_lot_report`) trusts a lot report signed by an organisation key of
the trust store, not revoked at the report's ``issued_at`` (revocation lists as for certificates);
a station key never signs one (``key_role``).
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, cast

from certs import limits
from certs.canonical import CanonicalError, canonical_json, parse_json, shown
from certs.errors import (
    CertError,
    InternalError,
    InvalidLotReport,
    KeyRoleError,
    KeyStoreError,
    MalformedEnvelope,
    RevokedKey,
    SchemaError,
    UnknownKey,
)
from certs.impact import DEVICE_KINDS, Impact
from certs.jws import MAX_ENVELOPE_BYTES, TYP_LOT_REPORT, Envelope, envelope_bytes, parse_envelope, sign
from certs.keys import ROLE_ORGANISATION, SigningKey, parse_time
from certs.model import _reader, _to_json, _ts
from certs.trust import TrustStore
from host import refs

SCHEMA = "tabula.lot-report/1"

DeviceKind = Literal["laptop", "desktop", "phone", "tablet", "server", "drive"]
DonorKind = Literal["company", "public_body", "household"]
Verdict = Literal["reuse", "repair", "recycle"]
OutcomeKind = Literal["reused", "sold", "recycled", "destroyed"]
DriveLevel = Literal["none", "clear", "purge"]
DriveResult = Literal["verified", "unverified", "failed", "interrupted"]

DONOR_KINDS = ("company", "public_body", "household")
OUTCOMES = ("reused", "sold", "recycled", "destroyed")
VERDICTS = ("reuse", "repair", "recycle")
#: Who a reused device is handed on to: a category, never a person's name.
BENEFICIARIES = ("household", "student", "association", "job_seeker", "other")

#: A lot of 2,000 devices with two drives each signs to about 2.5 MiB; sign_lot_report refuses any report
#: whose signed file would pass the verifier's 4 MiB (too many drives): split such a lot.
MAX_DEVICES = 2000
MAX_DRIVES = 64  # per device
DETAIL_MAX = 200
URL_MAX = 2000
CITATION_MAX = 2000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]+$")


def _day(value: str | None, name: str, *, optional: bool = False) -> date | None:
    if value is None:
        if optional:
            return None
        raise InvalidLotReport(f"{name} is required")
    if not _DATE.match(value):
        raise InvalidLotReport(f"{name} must be a date like 2026-03-31, got {shown(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidLotReport(f"{name} is not a valid date: {shown(value)}") from None


def _uuid(value: str, name: str) -> None:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise InvalidLotReport(f"{name} is not a UUID: {shown(value)}") from None
    if str(parsed) != value:
        raise InvalidLotReport(f"{name} must be a lowercase hyphenated UUID")


def _sha(value: str | None, name: str) -> None:
    if value is None or not _HEX64.match(value):
        raise InvalidLotReport(f"{name} must be 64 lowercase hex characters (the record's hash)")


def _text(label: str, value: str | None, limit: int, *, nul: bool = True) -> None:
    """The certificate's rule (:mod:`certs.limits`): drive strings may hold anything a drive reports."""
    limits.check_text(label, value, limit, nul=nul)


@dataclass(frozen=True)
class Organisation:
    """Who signs the report: the organisation's name and its key's fingerprint (the JWS ``kid``)."""

    name: str
    kid: str

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidLotReport("the organisation has a name")
        _text("organisation", self.name, limits.ORGANISATION_NAME_MAX)
        if not _HEX64.match(self.kid):
            raise InvalidLotReport("the organisation kid must be 64 lowercase hex characters")


@dataclass(frozen=True)
class Lot:
    """The donation lot: its reference, who gave it (no contact: personal data), when."""

    reference: str
    donor_name: str
    donor_kind: DonorKind
    received: str  # YYYY-MM-DD
    closed: str | None  # YYYY-MM-DD, None while the lot is open

    def __post_init__(self) -> None:
        if refs.lot_problem(self.reference) is not None:  # the one rule (host/refs.py)
            raise InvalidLotReport(
                f"a lot reference is 1 to 64 letters, digits, '.', '_', '/' or '-', got {shown(self.reference)}"
            )
        if not self.donor_name.strip():
            raise InvalidLotReport("the lot names its donor")
        _text("donor", self.donor_name, limits.DONOR_MAX)
        if self.donor_kind not in DONOR_KINDS:
            raise InvalidLotReport(f"donor kind is one of {', '.join(DONOR_KINDS)}")
        received = _day(self.received, "lot received")
        closed = _day(self.closed, "lot closed", optional=True)
        if closed is not None and received is not None and closed < received:
            raise InvalidLotReport("a lot cannot be closed before it was received")


@dataclass(frozen=True)
class LotDrive:
    """One drive of a device's inventory and the signed records that prove what happened to it.

    ``certificate_*``: its erasure certificate or failure report (all four set, or all None):
    id, hash of the signed record (SHA-256 of its compact JWS), level achieved, date (the record's
    ``issued_at``) and result (the record's ``result.outcome``).  ``destruction_*``: its destruction
    record (id, hash, date: the record's ``issued_at``).  A drive with neither is listed and flagged.
    """

    serial: str | None
    model: str | None
    certificate_id: str | None
    certificate_sha256: str | None
    level: DriveLevel | None
    date: str | None
    result: DriveResult | None
    destruction_id: str | None
    destruction_sha256: str | None
    destruction_date: str | None

    def __post_init__(self) -> None:
        for key in ("serial", "model"):
            _text(f"drive {key}", getattr(self, key), limits.DRIVE_FIELD_MAX, nul=False)
        cert = (self.certificate_id, self.certificate_sha256, self.level, self.date, self.result)
        if any(v is not None for v in cert):
            if any(v is None for v in cert):
                raise InvalidLotReport(
                    "a drive's certificate has an id, a hash, a level, a date and a result"
                )
            self._check_certificate()
        destruction = (self.destruction_id, self.destruction_sha256, self.destruction_date)
        if any(v is not None for v in destruction):
            if any(v is None for v in destruction):
                raise InvalidLotReport("a drive's destruction record has an id, a hash and a date")
            _uuid(cast(str, self.destruction_id), "destruction_id")
            _sha(self.destruction_sha256, "destruction_sha256")
            _ts(self.destruction_date, "destruction_date")

    def _check_certificate(self) -> None:
        _uuid(cast(str, self.certificate_id), "certificate_id")
        _sha(self.certificate_sha256, "certificate_sha256")
        _ts(self.date, "drive certificate date")
        if self.level not in ("none", "clear", "purge"):
            raise InvalidLotReport(f"a drive's level is none, clear or purge, got {shown(self.level)}")
        if (self.result == "verified") != (self.level != "none"):
            raise InvalidLotReport("a verified erasure reaches clear or purge; a failure report reaches none")

    @property
    def erased(self) -> bool:
        """A verified erasure certificate (clear or purge) proves it."""
        return self.result == "verified" and self.level in ("clear", "purge")

    @property
    def destroyed(self) -> bool:
        return self.destruction_id is not None

    @property
    def cleared(self) -> bool:
        return self.erased or self.destroyed


@dataclass(frozen=True)
class Outcome:
    """What became of a device: ``detail`` is the beneficiary category (reused), the WEEE channel
    (recycled), or a free note (sold, destroyed)."""

    kind: OutcomeKind
    detail: str
    date: str  # YYYY-MM-DD

    def __post_init__(self) -> None:
        if self.kind not in OUTCOMES:
            raise InvalidLotReport(f"an outcome is one of {', '.join(OUTCOMES)}")
        _text("outcome detail", self.detail, DETAIL_MAX)
        if self.kind == "reused" and self.detail not in BENEFICIARIES:
            raise InvalidLotReport(
                f"a reused device names a beneficiary category ({', '.join(BENEFICIARIES)}), never a person"
            )
        if self.kind == "recycled" and not self.detail.strip():
            raise InvalidLotReport("a recycled device names its WEEE channel")
        _day(self.date, "outcome date")


@dataclass(frozen=True)
class LotDevice:
    asset: str
    kind: DeviceKind
    make: str | None
    model: str | None
    serial: str | None
    verdict: Verdict | None  # the diagnostics verdict; None: not diagnosed
    drives: tuple[LotDrive, ...]
    data_cleared: bool
    outcome: Outcome | None  # None: no outcome yet

    def __post_init__(self) -> None:
        if not self.asset.strip():
            raise InvalidLotReport("a device has an asset number")
        _text("asset number", self.asset, limits.ASSET_NUMBER_MAX)
        if self.kind not in DEVICE_KINDS:
            raise InvalidLotReport(f"a device kind is one of {', '.join(DEVICE_KINDS)}")
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise InvalidLotReport(f"a verdict is one of {', '.join(VERDICTS)}")
        for key in ("make", "model", "serial"):
            _text(f"device {key}", getattr(self, key), limits.DRIVE_FIELD_MAX, nul=False)
        if len(self.drives) > MAX_DRIVES:
            raise InvalidLotReport(f"a device lists at most {MAX_DRIVES} drives")
        if self.data_cleared != self.all_cleared:
            raise InvalidLotReport(
                f"device {self.asset}: data_cleared is {str(self.data_cleared).lower()} but "
                + (
                    "every drive is proven cleared"
                    if self.all_cleared
                    else "it has no drive or a drive without a verified certificate or a destruction record"
                )
            )

    @property
    def all_cleared(self) -> bool:
        return bool(self.drives) and all(d.cleared for d in self.drives)

    @property
    def flagged_drives(self) -> list[LotDrive]:
        """Drives of the inventory with neither a verified certificate nor a destruction record."""
        return [d for d in self.drives if not d.cleared]


@dataclass(frozen=True)
class LotImpact:
    """The lot's impact (:meth:`certs.impact.Impact.to_json`), the table's name and its citations."""

    table: str
    citations: tuple[str, ...]
    figures: dict[str, Any]

    def __post_init__(self) -> None:
        if not self.table.strip():
            raise InvalidLotReport("the impact names its factor table")
        _text("impact table name", self.table, 200)
        if not self.citations:
            raise InvalidLotReport("the impact cites the sources of its factors")
        for c in self.citations:
            _text("citation", c, CITATION_MAX)
        try:
            Impact.from_json(self.figures)
        except SchemaError as e:
            raise InvalidLotReport(e.message) from e

    @property
    def impact(self) -> Impact:
        return Impact.from_json(self.figures)

    @classmethod
    def of(cls, impact: Impact, table: str, citations: list[str]) -> LotImpact:
        return cls(table, tuple(citations), impact.to_json())


@dataclass(frozen=True)
class LotReport:
    report_id: str  # UUID
    issued_at: str
    organisation: Organisation
    lot: Lot
    devices: tuple[LotDevice, ...]
    impact: LotImpact
    donor_page: str | None  # the donor page's URL (the QR code); None when the hub has none
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        if self.schema != SCHEMA:
            raise InvalidLotReport(f"unknown lot report schema {shown(self.schema)}")
        _uuid(self.report_id, "report_id")
        _ts(self.issued_at, "issued_at")
        if self.donor_page is not None and (
            len(self.donor_page) > URL_MAX or not _URL.match(self.donor_page)
        ):
            raise InvalidLotReport("the donor page is an http(s) URL without spaces or control characters")
        if len(self.devices) > MAX_DEVICES:
            raise InvalidLotReport(f"a lot report lists at most {MAX_DEVICES} devices")
        self._check_unique()
        self._check_dates()
        reused = Counter(d.kind for d in self.devices if d.outcome is not None and d.outcome.kind == "reused")
        counted = {k: v.devices for k, v in self.impact.impact.by_kind.items()}
        if counted != dict(reused):
            raise InvalidLotReport(
                f"the impact counts {_counts(counted)} reused devices but the report lists {_counts(reused)}"
            )

    def _check_unique(self) -> None:
        assets = Counter(d.asset for d in self.devices)
        twice = sorted(a for a, n in assets.items() if n > 1)
        if twice:
            raise InvalidLotReport(f"asset number {shown(twice[0])} is listed twice")
        ids = Counter(i for _, i in self.record_ids())
        twice = sorted(i for i, n in ids.items() if n > 1)
        if twice:
            raise InvalidLotReport(f"record {twice[0]} is listed for two drives")

    def _check_dates(self) -> None:
        received = cast(date, _day(self.lot.received, "lot received"))
        issued = parse_time(self.issued_at, "issued_at").date()
        closed = _day(self.lot.closed, "lot closed", optional=True)
        if received > issued or (closed is not None and closed > issued):
            raise InvalidLotReport("the report is dated before the lot was received or closed")
        for d in self.devices:
            if (
                d.outcome is not None
                and not received <= cast(date, _day(d.outcome.date, "outcome date")) <= issued
            ):
                raise InvalidLotReport(
                    f"device {d.asset}: its outcome is dated outside the lot's life (received to report)"
                )

    def record_ids(self) -> list[tuple[str, str]]:
        """Every record the report lists, as ("certificate" | "destruction", id)."""
        out: list[tuple[str, str]] = []
        for d in self.devices:
            for drive in d.drives:
                if drive.certificate_id is not None:
                    out.append(("certificate", drive.certificate_id))
                if drive.destruction_id is not None:
                    out.append(("destruction", drive.destruction_id))
        return out

    def counts(self) -> dict[str, int]:
        """The lot's progress: devices received, diagnosed, data cleared, with an outcome, by outcome."""
        out = {
            "received": len(self.devices),
            "diagnosed": sum(d.verdict is not None for d in self.devices),
            "data_cleared": sum(d.data_cleared for d in self.devices),
            "with_outcome": sum(d.outcome is not None for d in self.devices),
            "flagged_drives": sum(len(d.flagged_drives) for d in self.devices),
        }
        for kind in OUTCOMES:
            out[kind] = sum(d.outcome is not None and d.outcome.kind == kind for d in self.devices)
        return out

    def to_json(self) -> dict[str, Any]:
        out = _to_json(self)
        assert isinstance(out, dict)
        return out

    @classmethod
    def from_json(cls, data: Any) -> LotReport:
        """Strictly read a payload; any deviation from the schema raises :class:`SchemaError`."""
        if not isinstance(data, dict):
            raise SchemaError("the lot report is not a JSON object")
        if data.get("schema") != SCHEMA:
            raise SchemaError(
                f"unknown lot report schema {shown(data.get('schema'))} (this verifier reads {SCHEMA})"
            )
        result = _reader(cast(Any, cls))(data, None)
        assert isinstance(result, LotReport)
        return result


def _counts(counts: Any) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(dict(counts).items())) or "no"


def new_report_id() -> str:
    return str(uuid.uuid4())


# --- signing ------------------------------------------------------------------------------------------


def sign_lot_report(report: LotReport, org_key: SigningKey) -> bytes:
    """The signed file (pretty JSON of a flattened JWS) of ``report``, signed by the organisation key."""
    if org_key.key_role != ROLE_ORGANISATION:
        raise KeyStoreError("only an organisation key signs lot reports")
    if report.organisation.kid != org_key.kid:
        raise InvalidLotReport(
            f"the report names organisation key {report.organisation.kid[:16]}, not the signing key {org_key.kid[:16]}"
        )
    data = envelope_bytes(sign(report.to_json(), org_key.private, TYP_LOT_REPORT))
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InvalidLotReport(
            f"the signed report would be {len(data)} bytes, more than a verifier reads ({MAX_ENVELOPE_BYTES}): "
            "split the lot"
        )
    return data


# --- verifying the signed file ------------------------------------------------------------------------


@dataclass
class RecordCheck:
    """What the verifier found for one record the report lists (filled by :mod:`certs.lotcheck`)."""

    kind: str  # "certificate" or "destruction"
    record_id: str
    asset: str
    ok: bool
    how: str  # "folder", "log" or "" (not found)
    path: str | None = None
    problem: tuple[str, str] | None = None  # (reason, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.record_id,
            "asset": self.asset,
            "ok": self.ok,
            "found_in": self.how or None,
            "path": self.path,
            "reason": self.problem[0] if self.problem else "ok",
            "message": self.problem[1] if self.problem else "",
        }


@dataclass
class LotVerdict:
    """The verdict on a signed lot report: authentic and consistent, and (with a folder) backed by records."""

    path: str
    report: LotReport | None = None
    digest: str | None = None
    trust: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    records: list[RecordCheck] = field(default_factory=list)
    records_checked: bool = False  # whether a folder (or the log) was given

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.problems

    @property
    def authentic(self) -> bool:
        return self.report is not None

    @property
    def reason(self) -> str:
        return self.problems[0][0] if self.problems else "ok"

    def fail(self, err: CertError) -> None:
        self.problems.append((err.reason, err.message))

    def listed_hashes(self) -> set[str]:
        """The hashes of every record the report lists (what inclusion proofs name)."""
        r = self.report
        if r is None:
            return set()
        drives = [drive for d in r.devices for drive in d.drives]
        return {h for drive in drives for h in (drive.certificate_sha256, drive.destruction_sha256) if h}

    def summary(self) -> str:
        r = self.report
        if r is None:
            return ""
        c = r.counts()
        impact = r.impact.impact
        return (
            f"lot {r.lot.reference} of {r.lot.donor_name} ({r.organisation.name}): {c['received']} device(s), "
            f"{c['data_cleared']} data cleared, {c['reused']} reused, {c['sold']} sold, {c['recycled']} recycled, "
            f"{c['destroyed']} destroyed; {impact.co2e_kg} kg CO2e and {impact.waste_kg} kg of waste avoided; "
            f"report {r.report_id}"
        )

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "path": self.path,
            "kind": "lot_report",
            "ok": self.ok,
            "reason": self.reason,
            "problems": [{"reason": a, "message": m} for a, m in self.problems],
            "trust": self.trust,
            "notes": list(self.notes),
            "sha256": self.digest,
            "report_id": r.report_id if r else None,
            "organisation": r.organisation.name if r else None,
            "lot": r.lot.reference if r else None,
            "issued_at": r.issued_at if r else None,
            "counts": r.counts() if r else None,
            "impact": r.impact.figures if r else None,
            "records_checked": self.records_checked,
            "records": [c.to_json() for c in self.records],
        }


def is_lot_report(data: bytes) -> bool:
    """Whether ``data`` is a signed file of type ``tabula-lot-report+json`` (nothing else is checked)."""
    try:
        return parse_envelope(data).typ == TYP_LOT_REPORT
    except CertError:
        return False


def verify_lot_report(data: Any, trust: TrustStore, path: str = "") -> LotVerdict:
    """Signature, signer (an organisation key of ``trust``) and content of a lot report; never raises."""
    verdict = LotVerdict(path=path)
    try:
        env = parse_envelope(data, expect=TYP_LOT_REPORT)
        verdict.digest = env.digest
        env.verify_signature()
        verdict.report, verdict.trust, verdict.notes = _content(env, trust)
    except CertError as e:
        verdict.fail(e)
    except Exception as e:  # noqa: BLE001 - totality, as certs.verify._guarded: reported, not raised
        verdict.fail(
            InternalError(f"the verifier failed on this report ({type(e).__name__}: {str(e)[:200]})")
        )
    return verdict


def _content(env: Envelope, trust: TrustStore) -> tuple[LotReport, str, list[str]]:
    payload: Any = None
    try:
        payload = parse_json(env.payload_bytes, "payload")
    except MalformedEnvelope as e:
        bad: MalformedEnvelope | None = e
    else:
        bad = None
    issued_at = payload.get("issued_at") if isinstance(payload, dict) else None
    description, notes = _signer(env, trust, issued_at)
    if bad is not None:
        raise SchemaError(f"signed payload is not valid JSON: {bad.message}")
    try:
        canonical = canonical_json(payload)
    except CanonicalError as e:
        raise SchemaError(f"signed payload holds a value a lot report cannot: {e}") from e
    if canonical != env.payload_bytes:
        raise SchemaError("signed payload is not canonical JSON (sorted keys, no spaces, UTF-8)")
    report = LotReport.from_json(payload)
    if report.organisation.kid != env.kid:
        raise SchemaError(
            f"the report names organisation key {report.organisation.kid[:16]} but is signed by {env.kid[:16]}"
        )
    return report, description, notes


def _signer(env: Envelope, trust: TrustStore, issued_at: Any) -> tuple[str, list[str]]:
    """A lot report is trusted when an organisation key of the store signed it, unrevoked at the time."""
    entry = trust.entries.get(env.kid)
    if entry is None:
        raise UnknownKey(
            f"signing key {env.kid[:16]} is not in the trust store: a lot report is signed by the "
            "organisation key (add its public key to the trust directory)"
        )
    if entry.role != ROLE_ORGANISATION:
        raise KeyRoleError(
            f"key {env.kid[:16]} is a station key ({entry.source}): only organisation keys sign lot reports"
        )
    notes: list[str] = []
    revoked = trust.revocations().get(env.kid)
    if revoked is not None:
        try:
            when = parse_time(issued_at, "issued_at")
        except SchemaError:
            when = None  # the schema check refuses the report anyway
        what = f"key {env.kid[:16]} was revoked by {revoked.organisation} from {revoked.revoked_at} ({revoked.reason})"
        if when is None or when >= revoked.when:
            raise RevokedKey(f"{what}; this report was signed after that, at {shown(issued_at)}")
        notes.append(f"{what}; this report was signed before, at {issued_at}")
    return f"organisation key {env.kid[:16]} ({entry.source})", notes
