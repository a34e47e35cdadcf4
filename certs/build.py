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
    LEVEL_RANK,
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
    RequestedLevel,
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
from erase.model import Pattern, Range
from erase.record import FirmwareStepRecord, JobRecord, Outcome, PassRecord, VerificationRecord


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


def _check(v: VerificationRecord, first: int = 0) -> Check:
    return Check(
        pass_index=first + v.pass_index,
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


def _firmware_check(s: FirmwareStepRecord) -> Check | None:
    """The data read back after a firmware step, as a verification check numbered like its step."""
    d = s.data_check
    if not d:
        return None
    total = int(d.get("bytes_total", 0))
    checked = min(int(d.get("bytes_checked", 0)), total)
    return Check(
        pass_index=s.index,
        mode="sample",
        bytes_total=total,
        bytes_checked=checked,
        coverage_ppm=checked * 1_000_000 // total if total else 0,
        passed=bool(d.get("passed")),
        started_at=_utc(s.started_at),
        finished_at=_utc(s.finished_at or s.started_at),
        seed=str(d.get("seed", "")) or "00",
        subsections=None,
        mismatch_count=int(d.get("mismatch_count", 0)),
        mismatches=(),
        read_errors=(),
    )


def _verification_method(record: JobRecord, first: int) -> str:
    """How the erasure was verified, in words (the NIST 'verification method' field)."""
    plan = record.plan
    parts = []
    if plan.purge_steps:
        parts.append("the drive's status and a sampled read-back after each firmware step")
    if plan.passes and plan.verify != "none":
        which = "every pass" if plan.verify == "all" else "the last pass"
        if plan.verify_mode == "full":
            parts.append(f"full read-back of {which}")
        else:
            cov = [_check(v, first).coverage_ppm for v in record.verifications]
            pct = f" ({min(cov) / 10_000:.2f} % of the bytes)" if cov else ""
            parts.append(f"sampled read-back of {which}{pct}")
    return "; ".join(parts)


def _verification_result(record: JobRecord, checks: tuple[Check, ...], fw_checks: int) -> VerifyResult:
    plan = record.plan
    done = {v.pass_index for v in record.verifications}
    sanitizing = [st for st in plan.purge_steps if st.get("level") != "none"]
    if any(not c.passed for c in checks):
        return "failed"
    if all(i in done for i in plan.verified_passes()) and checks and fw_checks == len(sanitizing):
        return "passed"
    return "incomplete"


def _verification(record: JobRecord) -> Verification:
    plan = record.plan
    first = len(plan.purge_steps)
    fw_checks = [c for c in (_firmware_check(s) for s in record.firmware_steps) if c is not None]
    checks = tuple(fw_checks) + tuple(_check(v, first) for v in record.verifications)
    policy = "all" if plan.purge_steps and not plan.passes else plan.verify
    if policy == "none" and not fw_checks:
        return Verification(
            policy=policy,
            mode=plan.verify_mode,
            method="none (not verified)",
            result="not_performed",
            checks=checks,
        )
    return Verification(
        policy=policy,
        mode=plan.verify_mode,
        method=_verification_method(record, first),
        result=_verification_result(record, checks, len(fw_checks)),
        checks=checks,
    )


def _firmware_command(s: FirmwareStepRecord) -> str:
    """The mutating command(s) the step ran, as run (passwords already redacted in the record)."""
    cmds = [" ".join(c.get("argv", [])) for c in s.commands if c.get("mutating")]
    return " ; ".join(cmds) or "(not run)"


def _firmware_note(s: FirmwareStepRecord, label: str, requested: RequestedLevel) -> str:
    """Why a firmware step achieved less than requested ('' when it did not)."""
    achieved = s.level_achieved
    if s.level_planned == "none":
        return "preparation step: reaches no level by itself" + (f"; FAILED: {s.note}" if s.note else "")
    if achieved == "none":
        return f"no evidence of success: {s.note}"
    if LEVEL_RANK[achieved] < LEVEL_RANK[requested]:
        return f"{label} reaches {achieved.capitalize()} only on this media"
    return ""


def _firmware_step(
    i: int, raw: dict[str, Any], s: FirmwareStepRecord | None, record: JobRecord, tool: Tool
) -> Step:
    requested: RequestedLevel = "purge" if record.nist_level_requested == "purge" else "clear"
    label = str(raw.get("label", raw.get("action", "")))
    step_tool = Tool(name=str(raw.get("tool", "")) or tool.name, version="system")
    if s is None:
        return Step(
            index=i,
            kind="firmware",
            technique=label,
            level_requested=requested,
            level_achieved="none",
            note="step never ran",
            started_at=_utc(record.finished_at or record.started_at),
            finished_at=None,
            completed=False,
            tool=step_tool,
            command=" ".join(raw.get("argv", [])),
            status="not run",
        )
    data = s.data_check or {}
    return Step(
        index=i,
        kind="firmware",
        technique=label,
        level_requested=requested,
        level_achieved=s.level_achieved,  # type: ignore[arg-type]  # validated by FirmwareStepRecord
        note=_firmware_note(s, label, requested),
        started_at=_utc(s.started_at),
        finished_at=utc(s.finished_at),
        completed=s.completed and s.finished_at is not None,
        tool=step_tool,
        command=_firmware_command(s),
        status=s.status + (f"; data read back: {data.get('detail')}" if data else ""),
    )


def _firmware_steps(record: JobRecord, tool: Tool) -> list[Step]:
    """One certificate step per firmware/preparation step, with the level it proved and why not more."""
    done = {s.index: s for s in record.firmware_steps}
    return [
        _firmware_step(i, raw, done.get(i), record, tool) for i, raw in enumerate(record.plan.purge_steps)
    ]


def _pass_note(p: PassRecord, achieved: Level) -> str:
    if achieved == "clear":
        return ""
    if not p.completed:
        return f"pass incomplete ({p.bytes_written}/{p.bytes_total} bytes)"
    if p.bad_ranges:
        return f"{len(p.bad_ranges)} unwritable range(s)"
    return "the job was not certified (see the reasons above)"


def _overwrite_step(
    index: int, pattern: Pattern, p: PassRecord | None, record: JobRecord, tool: Tool, verified: bool
) -> Step:
    pinfo = PatternInfo(kind=pattern.kind, hex=pattern.hex, seed=pattern.seed, label=pattern.label)
    technique = f"overwrite: {pattern.describe()}"
    if p is None:
        return Step(
            index=index,
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
    achieved: Level = "clear" if verified and p.clean else "none"
    return Step(
        index=index,
        kind="overwrite",
        technique=technique,
        level_requested="clear",
        level_achieved=achieved,
        note=_pass_note(p, achieved),
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


def _steps(record: JobRecord, tool: Tool, verified: bool) -> tuple[Step, ...]:
    steps: list[Step] = _firmware_steps(record, tool) if record.plan.purge is not None else []
    first = len(steps)
    by_index = {p.index: p for p in record.passes}
    for i, pattern in enumerate(record.plan.passes):
        steps.append(_overwrite_step(first + i, pattern, by_index.get(i), record, tool, verified))
    return tuple(steps)


def _hidden(record: JobRecord) -> tuple[int, int | None, HiddenArea, HiddenArea, str]:
    """Capacities and hidden-area states, from the purge plan's probe and its preparation steps."""
    drive = record.plan.drive
    not_checked = "hidden areas (HPA/DCO) not checked: only the host-accessible capacity was sanitized"
    purge = record.plan.purge
    if purge is None:
        return drive.size_bytes, None, HiddenArea(), HiddenArea(), not_checked
    accessible = int(purge.get("accessible_bytes", drive.size_bytes))
    native = int(purge.get("native_bytes", drive.size_bytes))
    caps = purge.get("capabilities") or {}
    if caps.get("hpa") is None:
        return accessible, None, HiddenArea(), HiddenArea(), not_checked
    hidden = native - accessible
    if hidden <= 0:
        none = HiddenArea(status="none", hpa_bytes=0, details="hdparm -N: no Host Protected Area")
        return (
            accessible,
            native,
            none,
            none,
            "no hidden area (HPA/DCO) found: the whole native capacity was sanitized",
        )
    before = HiddenArea(status="present", hpa_bytes=hidden, details=f"{hidden} bytes hidden (HPA/AMA/DCO)")
    removed = any(s.ok and s.action in ("remove-hpa", "restore-dco") for s in record.firmware_steps)
    after = (
        HiddenArea(status="removed", hpa_bytes=0, details="native size restored and re-probed")
        if removed
        else HiddenArea(status="present", hpa_bytes=hidden, details="the hidden area could not be removed")
    )
    note = (
        f"a hidden area of {hidden} bytes was removed before sanitizing"
        if removed
        else f"a hidden area of {hidden} bytes remains: not sanitized"
    )
    return accessible, native, before, after, note


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


def _reasons(record: JobRecord, success: bool) -> tuple[str, ...]:
    """Why the record is not a certified erasure (a failure report always says why)."""
    reasons = tuple(record.reasons)
    if success or reasons:
        return reasons
    if record.outcome is Outcome.UNVERIFIED:
        return (
            "the overwrite was not verified (verify policy 'none'); NIST SP 800-88 requires verification",
        )
    return (f"the job ended '{record.outcome}'",)


def _method_details(record: JobRecord) -> str:
    plan = record.plan
    details = f"{len(plan.passes)} pass(es): " + ", ".join(p.describe() for p in plan.passes)
    if plan.purge is not None:
        fw = "; ".join(str(st.get("label")) for st in plan.purge_steps) or "none"
        details = f"policy {plan.purge.get('policy')}; firmware steps: {fw}" + (
            f"; then {details}" if plan.passes else ""
        )
    if plan.rounds > 1:
        details += f"; {plan.rounds} rounds"
    if plan.final_blank:
        details += "; final blanking pass"
    return details


def _person(record: JobRecord, settings: CertSettings) -> Person:
    op = record.plan.operator
    return Person(
        name=settings.technician or _opt(op, "name"),
        title=settings.title or _opt(op, "title"),
        organisation=settings.organisation or _opt(op, "organisation"),
        location=settings.location or _opt(op, "location"),
        contact=settings.contact or _opt(op, "contact"),
    )


def _media(record: JobRecord, settings: CertSettings) -> tuple[Media, str]:
    """The media section, and the note saying what was done about hidden areas."""
    drive = record.plan.drive
    op = record.plan.operator
    accessible, native_bytes, hidden_before, hidden_after, hidden_note = _hidden(record)
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
        native_bytes=native_bytes,
        accessible_bytes=accessible,
        logical_sector_size=drive.logical_sector_size,
        physical_sector_size=drive.physical_sector_size,
        hidden_before=hidden_before,
        hidden_after=hidden_after,
        lot=_opt(op, "lot") or None,
    )
    return media, hidden_note


def _sanitization(
    record: JobRecord, settings: CertSettings, tool: Tool, success: bool, reasons: tuple[str, ...], notes: str
) -> Sanitization:
    plan = record.plan
    requested: RequestedLevel = "purge" if record.nist_level_requested == "purge" else "clear"
    achieved: Level = record.nist_level if success and record.nist_level else "none"  # type: ignore[assignment]
    level_note = ""
    if LEVEL_RANK[achieved] < LEVEL_RANK[requested]:
        level_note = record.level_note or ("not erased: " + "; ".join(reasons))
        if not success:
            level_note = "not erased: " + "; ".join(reasons)
    technique = "overwrite"
    if plan.purge is not None and plan.purge_steps:
        technique = "firmware+overwrite" if plan.passes else "firmware"
    return Sanitization(
        method_type="Purge" if requested == "purge" else "Clear",
        level_requested=requested,
        level_achieved=achieved,
        level_note=level_note,
        method=plan.purge.get("policy", plan.method) if plan.purge is not None else plan.method,
        method_details=_method_details(record),
        technique=technique,
        tool=tool,
        steps=_steps(record, tool, success),
        post_classification=settings.post_classification,
        notes=notes,
    )


def build_certificate(
    record: JobRecord,
    *,
    settings: CertSettings,
    station: Station,
    health: dict[str, Any] | None = None,
    certificate_id: str | None = None,
    issued_at: str | None = None,
) -> Certificate:
    """The certificate (or failure report) of ``record``: its kind follows the record's facts."""
    plan = record.plan
    success = record.outcome is Outcome.VERIFIED and record.nist_level in ("clear", "purge")
    reasons = _reasons(record, success)
    tool = Tool(name=plan.tool.get("name", "tabula"), version=plan.tool.get("version", "unknown"))
    bad = tuple(_range(r) for r in record.bad_ranges)
    media, hidden_note = _media(record, settings)
    return Certificate(
        certificate_id=certificate_id or new_certificate_id(),
        kind="certificate" if success else "failure_report",
        issued_at=issued_at or now_utc(),
        station=station,
        result=Result(success=success, outcome=str(record.outcome), reasons=reasons),  # type: ignore[arg-type]
        person=_person(record, settings),
        media=media,
        sanitization=_sanitization(record, settings, tool, success, reasons, hidden_note),
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
        verification_url=settings.verification_url or None,
    )
