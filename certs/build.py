"""Build a :class:`~certs.model.Certificate` from an erase :class:`~erase.record.JobRecord`.

The kind follows the record's facts, never a caller's wish: only an outcome of ``verified`` yields a
``certificate``; ``unverified``, ``failed`` and ``interrupted`` jobs yield a ``failure_report``
(an unverified overwrite is not a NIST sanitization: Rev.1 section 4.7 requires verification).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from certs.errors import InvalidCertificate
from certs.model import (
    ByteRange,
    Certificate,
    Check,
    DestinationInfo,
    Errors,
    HiddenArea,
    Job,
    Level,
    Media,
    PatternInfo,
    Person,
    Result,
    Sanitization,
    Station,
    Step,
    Tool,
    Verification,
    VerifyResult,
    new_certificate_id,
)
from certs.settings import CertSettings
from erase.model import Range
from erase.record import JobRecord, Outcome, VerificationRecord


def utc(ts: str | None) -> str | None:
    """Normalise an ISO 8601 timestamp to ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (naive means UTC)."""
    if ts is None:
        return None
    try:
        dt = datetime.fromisoformat(ts.replace("Z", "+00:00") if ts.endswith("Z") else ts)
    except ValueError as e:
        raise InvalidCertificate(f"not an ISO 8601 timestamp: {ts!r}") from e
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if dt.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return dt.strftime(fmt)


def _utc(ts: str) -> str:
    out = utc(ts)
    assert out is not None
    return out


def now_utc() -> str:
    return _utc(datetime.now(UTC).isoformat())


def record_sha256(record: JobRecord) -> str:
    body = json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _range(r: Range) -> ByteRange:
    return ByteRange(offset=r.offset, length=r.length, op=r.op, error=r.error)


def _check(v: VerificationRecord) -> Check:
    return Check(
        pass_index=v.pass_index,
        mode=v.mode,
        bytes_total=v.bytes_total,
        bytes_checked=v.bytes_checked,
        coverage_ppm=v.bytes_checked * 1_000_000 // v.bytes_total if v.bytes_total else 0,
        passed=v.passed,
        started_at=_utc(v.started_at),
        finished_at=_utc(v.finished_at),
        seed=v.seed,
        subsections=v.subsections,
        mismatch_count=v.mismatch_count,
        mismatches=tuple(_range(r) for r in v.mismatches),
        read_errors=tuple(_range(r) for r in v.read_errors),
    )


def _verification(record: JobRecord) -> Verification:
    plan = record.plan
    checks = tuple(_check(v) for v in record.verifications)
    wanted = plan.verified_passes()
    result: VerifyResult
    if plan.verify == "none":
        result = "not_performed"
        method = "none (not verified)"
    else:
        which = "every pass" if plan.verify == "all" else "the last pass"
        if plan.verify_mode == "full":
            method = f"full read-back of {which}"
        else:
            cov = [c.coverage_ppm for c in checks]
            pct = f" ({min(cov) / 10_000:.2f} % of the bytes)" if cov else ""
            method = f"sampled read-back of {which}{pct}"
        done = {c.pass_index for c in checks}
        if any(not c.passed for c in checks):
            result = "failed"
        elif all(i in done for i in wanted) and checks:
            result = "passed"
        else:
            result = "incomplete"
    return Verification(
        policy=plan.verify, mode=plan.verify_mode, method=method, result=result, checks=checks
    )


def _steps(record: JobRecord, tool: Tool, verified: bool) -> tuple[Step, ...]:
    steps: list[Step] = []
    by_index = {p.index: p for p in record.passes}
    why = "the job was not certified (see the reasons above)"
    for i, pattern in enumerate(record.plan.passes):
        p = by_index.get(i)
        pinfo = PatternInfo(kind=pattern.kind, hex=pattern.hex, seed=pattern.seed, label=pattern.label)
        technique = f"overwrite: {pattern.describe()}"
        if p is None:
            steps.append(
                Step(
                    index=i,
                    kind="overwrite",
                    technique=technique,
                    level_requested="clear",
                    level_achieved="none",
                    note="pass never started",
                    started_at=_utc(record.finished_at or record.started_at),
                    finished_at=None,
                    completed=False,
                    tool=tool,
                    pattern=pinfo,
                    bytes_total=record.plan.drive.size_bytes,
                    bytes_written=0,
                )
            )
            continue
        achieved: Level = "clear" if verified and p.clean else "none"
        if achieved == "clear":
            note = ""
        elif not p.completed:
            note = f"pass incomplete ({p.bytes_written}/{p.bytes_total} bytes)"
        elif p.bad_ranges:
            note = f"{len(p.bad_ranges)} unwritable range(s)"
        else:
            note = why
        steps.append(
            Step(
                index=i,
                kind="overwrite",
                technique=technique,
                level_requested="clear",
                level_achieved=achieved,
                note=note,
                started_at=_utc(p.started_at),
                finished_at=utc(p.finished_at),
                completed=p.completed,
                tool=tool,
                pattern=pinfo,
                bytes_total=p.bytes_total,
                bytes_written=p.bytes_written,
                resumed=p.resumed,
                bad_ranges=tuple(_range(r) for r in p.bad_ranges),
            )
        )
    return tuple(steps)


def _opt(d: dict[str, str], key: str) -> str:
    v = d.get(key, "")
    return v if isinstance(v, str) else str(v)


def _health(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """A JSON-safe copy of the health summary: floats become strings (signed records hold no floats)."""
    if health is None:
        return None

    def conv(v: Any, path: str) -> Any:
        if v is None or isinstance(v, (str, bool, int)):
            return v
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, dict):
            return {str(k): conv(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x, f"{path}[{i}]") for i, x in enumerate(v)]
        raise InvalidCertificate(f"health{path}: {type(v).__name__} is not a JSON value")

    out = conv(health, "")
    assert isinstance(out, dict)
    return out


def build_certificate(
    record: JobRecord,
    *,
    settings: CertSettings,
    station: Station,
    health: dict[str, Any] | None = None,
    certificate_id: str | None = None,
    issued_at: str | None = None,
) -> Certificate:
    plan = record.plan
    drive = plan.drive
    op = plan.operator
    verified = record.outcome is Outcome.VERIFIED
    success = verified and record.nist_level == "clear"
    reasons = tuple(record.reasons)
    if not success and not reasons:
        if record.outcome is Outcome.UNVERIFIED:
            reasons = (
                "the overwrite was not verified (verify policy 'none'); NIST SP 800-88 requires verification",
            )
        else:
            reasons = (f"the job ended '{record.outcome}'",)
    tool = Tool(name=plan.tool.get("name", "tabula"), version=plan.tool.get("version", "unknown"))
    steps = _steps(record, tool, success)
    details = f"{len(plan.passes)} pass(es): " + ", ".join(p.describe() for p in plan.passes)
    if plan.rounds > 1:
        details += f"; {plan.rounds} rounds"
    if plan.final_blank:
        details += "; final blanking pass"
    bad = tuple(_range(r) for r in record.bad_ranges)
    person = Person(
        name=settings.technician or _opt(op, "name"),
        title=settings.title or _opt(op, "title"),
        organisation=settings.organisation or _opt(op, "organisation"),
        location=settings.location or _opt(op, "location"),
        contact=settings.contact or _opt(op, "contact"),
    )
    media = Media(
        manufacturer=drive.vendor,
        model=drive.model,
        serial=drive.serial,
        wwn=drive.wwn,
        firmware=drive.firmware,
        media_type=drive.media_type,
        interface=drive.transport,
        rotational=drive.rotational,
        removable=drive.removable,
        asset_number=_opt(op, "asset_number") or settings.asset_number,
        source=_opt(op, "donor") or settings.donor,
        classification=settings.classification,
        data_backed_up=settings.data_backed_up,  # type: ignore[arg-type]  # validated by CertSettings
        backup_location=settings.backup_location,
        native_bytes=None,
        accessible_bytes=drive.size_bytes,
        logical_sector_size=drive.logical_sector_size,
        physical_sector_size=drive.physical_sector_size,
        hidden_before=HiddenArea(),
        hidden_after=HiddenArea(),
    )
    sanitization = Sanitization(
        method_type="Clear",
        level_requested="clear",
        level_achieved="clear" if success else "none",
        level_note="" if success else "not erased: " + "; ".join(reasons),
        method=plan.method,
        method_details=details,
        technique="overwrite",
        tool=tool,
        steps=steps,
        post_classification=settings.post_classification,
        notes="hidden areas (HPA/DCO) not checked: only the host-accessible capacity was overwritten",
    )
    return Certificate(
        certificate_id=certificate_id or new_certificate_id(),
        kind="certificate" if success else "failure_report",
        issued_at=issued_at or now_utc(),
        station=station,
        result=Result(success=success, outcome=str(record.outcome), reasons=reasons),  # type: ignore[arg-type]
        person=person,
        media=media,
        sanitization=sanitization,
        verification=_verification(record),
        errors=Errors(bad_ranges=bad, bad_bytes=sum(r.length for r in bad)),
        destination=DestinationInfo(kind=settings.destination, details=settings.destination_details),  # type: ignore[arg-type]
        job=Job(
            job_id=plan.job_id,
            started_at=_utc(record.started_at),
            finished_at=utc(record.finished_at),
            record_sha256=record_sha256(record),
        ),
        health=_health(health),
    )
