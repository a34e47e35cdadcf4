"""A lot report's records: each one it lists is present and says what the report says, or is in the log.

``station verify REPORT --certs DIR`` (:mod:`certs.cli`) checks, for every drive of every device the
signed lot report lists (:mod:`certs.lotreport`):

* its certificate (or failure report) and its destruction record, found by id in the folders
  (``--certs``, repeatable): the record verifies like any other (signature, trust, schema, its PDF's
  page; a failure report is expected when the report says the erasure failed), its hash is the one
  the report names, and its level, date (``issued_at``), result, drive serial and model, and asset
  number (when the record has one) are the report's.  Any difference is ``record_mismatch``; a record
  that does not verify is ``record_invalid``;
* a record not in the folders, when the hub's log key is given (``--log``): an inclusion proof for the
  hash the report names (``<id>.log.json`` in the folders, or ``--log-proof``) must lead to a tree
  head the log key signed.  Only the hash is then proven (the record itself was not given: a note
  says so);
* otherwise ``record_missing``.

Like the rest of the verifier nothing here raises: every failure is a reason on the lot verdict,
and each record's finding is listed in ``LotVerdict.records``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from certs.errors import (
    CertError,
    InternalError,
    LogProofMissing,
    LotRecordInvalid,
    LotRecordMismatch,
    LotRecordMissing,
    VerificationError,
)
from certs.lotpdf import LOT_ATTACHMENT, check_lot_page
from certs.lotreport import LotDevice, LotDrive, LotVerdict, RecordCheck, is_lot_report, verify_lot_report
from certs.model import Certificate
from certs.pdfcheck import extract_signed
from certs.tlog import LogKeys, LogProof, check_inclusion, is_sidecar, read_log_proof
from certs.trust import TrustStore
from certs.verify import Verdict, Verifier, read_capped


def read_lot_file(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a lot report (signed JSON, or a PDF embedding one), else None.

    Anything unreadable is None: the certificate verifier then reports it as it does today."""
    try:
        data = read_capped(path)
    except CertError:
        return None
    if data.startswith(b"%PDF-"):
        try:
            extract_signed(data, str(path), LOT_ATTACHMENT)
        except Exception:  # noqa: BLE001 - not a lot report's PDF: the certificate verifier says why
            return None
        return data
    return data if is_lot_report(data) else None


def verify_lot_file(path: Path, trust: TrustStore, data: bytes | None = None) -> LotVerdict:
    """The verdict on a lot report file (JSON or PDF; for a PDF, its page too); never raises."""
    verdict = LotVerdict(path=str(path))
    try:
        data = read_capped(path) if data is None else data
        if not data.startswith(b"%PDF-"):
            return verify_lot_report(data, trust, str(path))
        verdict = verify_lot_report(extract_signed(data, str(path), LOT_ATTACHMENT), trust, str(path))
        if verdict.report is not None:
            for mismatch in check_lot_page(data, verdict.report):
                verdict.fail(mismatch)
    except CertError as e:
        verdict.fail(e)
    except Exception as e:  # noqa: BLE001 - totality, as certs.verify._guarded
        verdict.fail(InternalError(f"the verifier failed on this file ({type(e).__name__}: {str(e)[:200]})"))
    return verdict


def check_records(
    verdict: LotVerdict,
    trust: TrustStore,
    dirs: list[Path],
    log_keys: LogKeys | None = None,
    proofs: Iterable[Path] = (),
) -> None:
    """Check every record ``verdict``'s report lists against ``dirs`` (and the log); never raises."""
    report = verdict.report
    if report is None:
        return
    verdict.records_checked = True
    try:
        found = _index(Verifier(trust).verify_paths(dirs))
        given = _proofs([*proofs, *_sidecars(dirs)], verdict) if log_keys else {}
        for device in report.devices:
            for drive in device.drives:
                for kind in ("certificate", "destruction"):
                    check = _check(kind, device, drive, found, given, log_keys or {})
                    if check is not None:
                        verdict.records.append(check)
    except Exception as e:  # noqa: BLE001 - totality, as certs.verify._guarded
        verdict.fail(InternalError(f"the record check failed ({type(e).__name__}: {str(e)[:200]})"))
        return
    for c in verdict.records:
        if c.problem is not None:
            verdict.problems.append(c.problem)
    proven = sum(c.how == "log" for c in verdict.records)
    if proven:
        verdict.notes.append(
            f"{proven} record(s) not in the folders are proven in the hub's log by their hash only "
            "(their level, date and result could not be compared)"
        )


def _index(verdicts: list[Verdict]) -> dict[str, list[Verdict]]:
    """The verdicts by record id; a file that does not verify counts under its name (``<id>.json``)."""
    out: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        record = v.record
        out[record.certificate_id if record is not None else Path(v.path).stem].append(v)
    return out


def _sidecars(dirs: list[Path]) -> list[Path]:
    """The inclusion proofs (``*.log.json``) kept in the folders."""
    out: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for root, subdirs, files in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            out += [Path(root) / f for f in sorted(files) if is_sidecar(f)]
    return out


def _proofs(paths: list[Path], verdict: LotVerdict) -> dict[str, LogProof]:
    out: dict[str, LogProof] = {}
    for p in paths:
        try:
            proof = read_log_proof(read_capped(p))
        except CertError as e:
            verdict.notes.append(f"inclusion proof {p} ignored: {e.message}")
            continue
        out[proof.sha256] = proof
    return out


def _check(
    kind: str,
    device: LotDevice,
    drive: LotDrive,
    found: dict[str, list[Verdict]],
    given: dict[str, LogProof],
    log_keys: LogKeys,
) -> RecordCheck | None:
    record_id = drive.certificate_id if kind == "certificate" else drive.destruction_id
    sha = drive.certificate_sha256 if kind == "certificate" else drive.destruction_sha256
    if record_id is None or sha is None:
        return None
    check = RecordCheck(kind, record_id, device.asset, ok=False, how="")
    try:
        candidates = found.get(record_id, [])
        if candidates:
            check.how = "folder"
            v = _matching(candidates, sha, kind, record_id)
            check.path = v.path
            _compare(kind, device, drive, v)
        elif log_keys:
            proof = given.get(sha)
            if proof is None:
                raise LogProofMissing(
                    f"{kind} {record_id} is not in the folders and no inclusion proof names it"
                )
            check_inclusion(proof, sha, log_keys)
            check.how = "log"
        else:
            raise LotRecordMissing(f"{kind} {record_id} (device {device.asset}) is not in the folders given")
        check.ok = True
    except VerificationError as e:
        check.problem = (e.reason, f"device {device.asset}: {e.message}")
    return check


def _unexpected(v: Verdict) -> list[tuple[str, str]]:
    """A record's problems, but for being a failure report (which the report may well list)."""
    return [(r, m) for r, m in v.problems if r != "failure_report"]


def _matching(candidates: list[Verdict], sha: str, kind: str, record_id: str) -> Verdict:
    """The verified record with the report's hash (a failure report is expected, other problems are not)."""
    same = [v for v in candidates if v.digest == sha]
    if not same and any(v.record is not None for v in candidates):
        digests = ", ".join(sorted({(v.digest or "?")[:16] for v in candidates}))
        raise LotRecordMismatch(
            f"{kind} {record_id}: the file(s) with this id have hash {digests}, the report says {sha[:16]}"
        )
    for v in same:
        if v.record is not None and not _unexpected(v):
            return v
    v = (same or candidates)[0]
    reason, message = (_unexpected(v) or [("invalid", "?")])[0]
    raise LotRecordInvalid(f"{kind} {record_id} ({v.path}) does not verify: {reason}: {message}")


def _compare(kind: str, device: LotDevice, drive: LotDrive, v: Verdict) -> None:
    record = v.record
    differences: list[str] = []
    if kind == "certificate":
        if not isinstance(record, Certificate):
            raise LotRecordMismatch(f"{v.path} is a destruction record, the report lists it as a certificate")
        got = (record.sanitization.level_achieved, record.issued_at, record.result.outcome)
        want = (drive.level, drive.date, drive.result)
        for name, g, w in zip(("level", "date", "result"), got, want, strict=True):
            if g != w:
                differences.append(f"{name} is {g!r} in the record, {w!r} in the report")
        asset = record.media.asset_number
    else:
        if v.destruction is None:
            raise LotRecordMismatch(f"{v.path} is a certificate, the report lists it as a destruction record")
        record = v.destruction
        if record.issued_at != drive.destruction_date:
            differences.append(
                f"date is {record.issued_at!r} in the record, {drive.destruction_date!r} in the report"
            )
        asset = record.media.asset_number
    media = record.media
    pairs: list[tuple[str, str | None, str | None]] = [
        ("serial", media.serial, drive.serial),
        ("model", media.model, drive.model),
    ]
    for name, in_record, in_report in pairs:
        if in_report is not None and in_record != in_report:  # a report may leave them out
            differences.append(f"drive {name} is {in_record!r} in the record, {in_report!r} in the report")
    if asset and asset != device.asset:
        differences.append(f"asset number is {asset!r} in the record, {device.asset!r} in the report")
    if differences:
        raise LotRecordMismatch(
            f"{kind} {v.record.certificate_id if v.record else ''}: " + "; ".join(differences)
        )
