"""Offline verification of signed certificates (JSON files, PDFs, directories of both).

The verifier is total: whatever the input, it returns a verdict and never raises.  Files are
size-checked before they are read (:data:`MAX_JSON_BYTES`, :data:`MAX_PDF_BYTES`: ``too_large``),
only regular files are read (``unreadable``), and a defect of the verifier itself becomes the
verdict ``internal_error`` for that file instead of a traceback that would stop the run.

For each certificate, in this order (the first failure is the verdict's reason):

1. the file is a well-formed Ed25519 flattened JWS of type ``tabula-certificate+json``
   (``malformed``, ``too_large``, ``unsupported_algorithm``); a PDF holds exactly one embedded record
   (``pdf_error``, ``pdf_structure``);
2. the signature matches the header's key (``bad_signature``);
3. the key is trusted for the station id it signs as, at the time it signed (``unknown_key``,
   ``unendorsed_key``, ``key_role``, ``station_mismatch``, ``revoked_key``);
4. the payload is canonical JSON and a valid ``tabula.certificate/2`` (or ``/1``) record signed by the key it
   names (``schema_error``);
5. the record is a certified erasure, not a failure report (``failure_report``);
   a destruction record (``tabula-destruction+json``, :mod:`certs.destruction`) is checked the same way
   (1-4, 6, and the chain it is numbered in) and reported as what it is: never an erasure (``ok`` is
   False), ``valid`` when nothing is wrong with it;
6. for a PDF, the page, the QR code and the metadata say what the signed record says
   (``page_mismatch``, naming the field).

With ``chain=True`` the certificates of each station key are then checked as a sequence: a missing
number (``chain_gap``), two certificates with one number (``chain_duplicate``), a previous-hash that
does not match (``chain_break``) or a date going backwards (``chain_reordered``).  The same
certificate seen twice (its JSON and its PDF) counts once.  A deleted *newest* certificate cannot be
detected from the files alone: a signed chain head can (:mod:`certs.chainhead`, checked by
:mod:`certs.logcheck`, as are the hub's inclusion proofs).  Two different records with one
certificate id are ``duplicate_id``, in any folder verification.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from certs.canonical import CanonicalError, canonical_json, parse_json
from certs.chainhead import is_chain_head_file
from certs.destruction import DestructionRecord
from certs.errors import (
    CertError,
    ChainBreak,
    ChainDuplicate,
    ChainError,
    ChainGap,
    ChainReordered,
    DuplicateId,
    InternalError,
    MalformedEnvelope,
    NotASuccess,
    PageMismatch,
    SchemaError,
    TooLarge,
    Unreadable,
)
from certs.jws import MAX_ENVELOPE_BYTES, TYP_CERTIFICATE, TYP_DESTRUCTION, Envelope, parse_envelope
from certs.model import Certificate
from certs.pdf import extract_signed
from certs.pdfcheck import check_page
from certs.tlog import is_sidecar
from certs.trust import TrustStore

#: Largest signed JSON file read (a certificate is a few kilobytes; thousands of bad ranges fit).
MAX_JSON_BYTES = MAX_ENVELOPE_BYTES
#: Largest PDF read (a certificate's PDF is about 100 kB).
MAX_PDF_BYTES = 16 * 1024 * 1024


@dataclass
class Verdict:
    path: str
    certificate: Certificate | None = None
    destruction: DestructionRecord | None = None  # a destruction record instead of a certificate
    digest: str | None = None
    trust: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason code, message)
    notes: list[str] = field(default_factory=list)  # facts that do not make it fail (a later revocation)
    mismatched_fields: list[str] = field(default_factory=list)  # PDF fields that differ from the record
    log: dict[str, Any] | None = None  # where the hub's transparency log holds it (with --log)

    @property
    def ok(self) -> bool:
        """A valid, authentic, certified erasure with no chain problem."""
        return not self.problems and self.certificate is not None and self.certificate.success

    @property
    def authentic(self) -> bool:
        """Signature, trust and schema are fine (it may still be a failure report or a destruction)."""
        return self.certificate is not None or self.destruction is not None

    @property
    def valid(self) -> bool:
        """A certified erasure, or a destruction record with no problem (it is still no erasure)."""
        return self.ok or (self.destruction is not None and not self.problems)

    @property
    def record(self) -> Certificate | DestructionRecord | None:
        """The signed record, whichever kind it is."""
        return self.certificate if self.certificate is not None else self.destruction

    @property
    def reason(self) -> str:
        return self.problems[0][0] if self.problems else "ok"

    def fail(self, err: CertError) -> None:
        self.problems.append((err.reason, err.message))
        if isinstance(err, PageMismatch):
            self.mismatched_fields.append(err.field)

    def summary(self) -> str:
        d = self.destruction
        if d is not None:
            dm = d.media
            drive = " ".join(x for x in (dm.manufacturer, dm.model) if x) or "drive"
            x = d.destruction
            return (
                f"{drive} s/n {dm.serial or dm.wwn or '?'}: PHYSICALLY DESTROYED ({x.method}, by "
                f"{x.performed_by}, {x.destroyed_at}), never erased; failed job {d.failed_job.job_id}; "
                f"station {d.station.id} #{d.station.sequence}; id {d.record_id}"
            )
        c = self.certificate
        if c is None:
            return ""
        m = c.media
        drive = " ".join(x for x in (m.manufacturer, m.model) if x) or "drive"
        serial = m.serial or m.wwn or "?"
        what = (
            f"erased ({c.sanitization.level_achieved}) and verified"
            if c.success
            else f"NOT ERASED ({c.result.outcome})"
        )
        return f"{drive} s/n {serial}: {what}; station {c.station.id} #{c.station.sequence}; id {c.certificate_id}"

    def to_json(self) -> dict[str, Any]:
        if self.destruction is not None:
            return self._destruction_json(self.destruction)
        c = self.certificate
        return {
            "path": self.path,
            "ok": self.ok,
            "valid": self.valid,
            "reason": self.reason,
            "problems": [{"reason": r, "message": m} for r, m in self.problems],
            "trust": self.trust,
            "notes": list(self.notes),
            "mismatched_fields": list(self.mismatched_fields),
            "sha256": self.digest,
            "certificate_id": c.certificate_id if c else None,
            "kind": c.kind if c else None,
            "outcome": c.result.outcome if c else None,
            "level_achieved": c.sanitization.level_achieved if c else None,
            "station": c.station.id if c else None,
            "station_kid": c.station.kid if c else None,
            "sequence": c.station.sequence if c else None,
            "serial": c.media.serial if c else None,
            "model": c.media.model if c else None,
            "asset_number": c.media.asset_number if c else None,
            "lot": c.media.lot if c else None,
            "log": self.log,
        }

    def _destruction_json(self, d: DestructionRecord) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": False,  # never an erasure
            "valid": self.valid,
            "reason": self.reason if self.problems else "destruction",
            "problems": [{"reason": r, "message": m} for r, m in self.problems],
            "trust": self.trust,
            "notes": list(self.notes),
            "mismatched_fields": list(self.mismatched_fields),
            "sha256": self.digest,
            "certificate_id": d.record_id,
            "kind": "destruction",
            "outcome": "destroyed",
            "level_achieved": None,
            "destruction_method": d.destruction.method,
            "failed_job": d.failed_job.job_id,
            "failure_report": d.failed_job.report_id,
            "station": d.station.id,
            "station_kid": d.station.kid,
            "sequence": d.station.sequence,
            "serial": d.media.serial,
            "model": d.media.model,
            "asset_number": d.media.asset_number,
            "lot": d.media.lot,
        }


class Verifier:
    """Verifies certificates against one trust store; caches keys and endorsements across files."""

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust

    def verify_envelope(self, data: Any, path: str) -> Verdict:
        """The verdict on one signed record (bytes, str or decoded JSON); never raises."""
        return _guarded(path, lambda: self._envelope(data, path))

    def _envelope(self, data: Any, path: str) -> Verdict:
        verdict = Verdict(path=path)
        try:
            env = parse_envelope(data)
            if env.typ not in (TYP_CERTIFICATE, TYP_DESTRUCTION):
                raise MalformedEnvelope(f"this is a {env.typ}, not a {TYP_CERTIFICATE}")
            verdict.digest = env.digest
            env.verify_signature()
            record, verdict.trust, verdict.notes = self._content(env)
        except CertError as e:
            verdict.fail(e)
            return verdict
        if isinstance(record, DestructionRecord):
            verdict.destruction = record
            return verdict
        verdict.certificate = record
        cert = record
        if not cert.success:
            why = "; ".join(cert.result.reasons)
            verdict.fail(
                NotASuccess(f"failure report, not an erasure certificate: {cert.result.outcome}: {why}")
            )
        return verdict

    def _content(self, env: Envelope) -> tuple[Certificate | DestructionRecord, str, list[str]]:
        payload: Any = None
        bad_json: MalformedEnvelope | None = None
        try:
            payload = parse_json(env.payload_bytes, "payload")
        except MalformedEnvelope as e:
            bad_json = e
        station = payload.get("station") if isinstance(payload, dict) else None
        station_id = station.get("id") if isinstance(station, dict) else None
        issued_at = payload.get("issued_at") if isinstance(payload, dict) else None
        decision = self.trust.check(env, station_id if isinstance(station_id, str) else None, issued_at)
        if bad_json is not None:
            raise SchemaError(f"signed payload is not valid JSON: {bad_json.message}")
        try:
            canonical = canonical_json(payload)
        except CanonicalError as e:
            raise SchemaError(f"signed payload holds a value a certificate cannot: {e}") from e
        if canonical != env.payload_bytes:
            raise SchemaError("signed payload is not canonical JSON (sorted keys, no spaces, UTF-8)")
        record: Certificate | DestructionRecord = (
            DestructionRecord.from_dict(payload)
            if env.typ == TYP_DESTRUCTION
            else Certificate.from_dict(payload)
        )
        if record.station.kid != env.kid:
            raise SchemaError(
                f"certificate names key {record.station.kid[:16]} but is signed by {env.kid[:16]}"
            )
        return record, decision.description, decision.notes

    def verify_file(self, path: Path) -> Verdict:
        """The verdict on one file (signed JSON or PDF); never raises, never reads an oversized file."""
        return _guarded(str(path), lambda: self._file(path))

    def _file(self, path: Path) -> Verdict:
        try:
            data = read_capped(path)
        except CertError as e:
            v = Verdict(path=str(path))
            v.fail(e)
            return v
        if not data.startswith(b"%PDF-"):
            return self._envelope(data, str(path))
        try:
            signed = extract_signed(data, str(path))
        except CertError as e:
            v = Verdict(path=str(path))
            v.fail(e)
            return v
        verdict = self._envelope(signed, str(path))
        record = verdict.record
        if record is not None and verdict.digest is not None:
            page = check_page(data, record, verdict.digest)
            for mismatch in page.mismatches:
                verdict.fail(mismatch)
            unsigned_link = record.verification_url is None and page.qr_text is not None
            if unsigned_link and not str(page.qr_text).startswith("tabula-cert:"):
                verdict.notes.append(f"the QR code links to {page.qr_text} (the link itself is not signed)")
        return verdict

    def verify_paths(
        self, paths: Iterable[Path], *, chain: bool = False, heads: list[Path] | None = None
    ) -> list[Verdict]:
        """Verify files and folders.  Chain-head files met on the way are appended to ``heads``
        (checked by :func:`certs.logcheck.check_heads`); inclusion proofs (``*.log.json``) are skipped:
        they go with their certificate (:func:`certs.logcheck.check_log`)."""
        verdicts: list[Verdict] = []
        for p in expand(paths, heads):
            if isinstance(p, Verdict):
                verdicts.append(p)
            else:
                verdicts.append(self.verify_file(p))
        check_duplicate_ids(verdicts)
        if chain:
            check_chain(verdicts)
        return verdicts


def _guarded(path: str, run: Callable[[], Verdict]) -> Verdict:
    """Run one verification; an unexpected exception becomes an ``internal_error`` verdict.

    Every expected failure is a :class:`CertError` handled inside ``run``; what reaches this handler is
    a defect of the verifier (the fuzz tests assert it never happens), reported for this file only so
    that one hostile file cannot stop the verification of a folder.
    """
    try:
        return run()
    except Exception as e:  # noqa: BLE001 - totality: see the docstring; the error is reported, not hidden
        v = Verdict(path=path)
        v.fail(InternalError(f"the verifier failed on this file ({type(e).__name__}: {str(e)[:200]})"))
        return v


def read_capped(path: Path) -> bytes:
    """Read a regular file of at most :data:`MAX_PDF_BYTES` (PDF) or :data:`MAX_JSON_BYTES` (other).

    The size is checked on the open file before anything is read, and the read itself is bounded
    (a file growing meanwhile cannot make it read more).  FIFOs, devices and directories are refused
    without blocking.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise Unreadable(f"cannot read {path}: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(f"{path} is not a regular file")
        head = os.pread(fd, 5, 0)
        limit = MAX_PDF_BYTES if head == b"%PDF-" else MAX_JSON_BYTES
        kind = "PDF" if head == b"%PDF-" else "signed JSON file"
        if st.st_size > limit:
            raise TooLarge(f"{st.st_size} bytes: larger than any {kind} Tabula writes (at most {limit})")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise TooLarge(f"the file grew past {limit} bytes while being read")
        return b"".join(chunks)
    except OSError as e:
        raise Unreadable(f"cannot read {path}: {e.strerror}") from e
    finally:
        os.close(fd)


def expand(paths: Iterable[Path], heads: list[Path] | None = None) -> Iterator[Path | Verdict]:
    """Files as given; directories recursively (their *.json and *.pdf files, hidden files skipped).

    Symbolic links to directories are not followed (no loops); a directory that cannot be listed
    yields an ``unreadable`` verdict instead of stopping the walk.  Inclusion proofs (``*.log.json``)
    are not records; chain heads (``chain-head.json``, ``*.chain-head.json``) go to ``heads``.
    """
    for p in paths:
        if not p.is_dir():
            if not _side_file(p, heads):
                yield p
            continue
        errors: list[OSError] = []
        found: list[Path] = []
        for root, dirs, files in os.walk(p, onerror=errors.append):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                f = Path(root) / name
                wanted = f.suffix.lower() in (".json", ".pdf") and not name.startswith(".")
                if wanted and f.is_file() and not _side_file(f, heads):
                    found.append(f)
        yield from sorted(found)
        for err in errors:
            v = Verdict(path=str(err.filename or p))
            v.fail(Unreadable(f"cannot list {err.filename}: {err.strerror}"))
            yield v


def _side_file(path: Path, heads: list[Path] | None) -> bool:
    """Whether ``path`` is a proof or a chain head rather than a record (a head goes to ``heads``)."""
    if is_sidecar(path.name):
        return True
    if is_chain_head_file(path.name):
        if heads is not None:
            heads.append(path)
        return True
    return False


def check_duplicate_ids(verdicts: list[Verdict]) -> None:
    """Flag two different authentic records (different hashes) that carry one certificate id."""
    by_id: dict[str, set[str]] = defaultdict(set)
    for v in verdicts:
        r = v.record
        if r is not None and v.digest is not None:
            by_id[r.certificate_id].add(v.digest)
    for v in verdicts:
        r = v.record
        if r is None:
            continue
        digests = by_id[r.certificate_id]
        if len(digests) > 1:
            v.fail(
                DuplicateId(
                    f"certificate id {r.certificate_id} is carried by {len(digests)} different signed records"
                )
            )


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def check_chain(verdicts: list[Verdict]) -> None:
    """Mark chain problems on the verdicts of authentic certificates, grouped by station key."""
    by_kid: dict[str, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for v in verdicts:
        r = v.record
        if r is not None and v.digest is not None:
            by_kid[r.station.kid][v.digest].append(v)
    for groups in by_kid.values():
        _check_station_chain(groups)


def _check_station_chain(groups: dict[str, list[Verdict]]) -> None:
    """One station key's certificates (the verdicts of each distinct record, by hash)."""
    by_seq: dict[int, list[str]] = defaultdict(list)
    for digest, vs in groups.items():
        by_seq[_cert(vs[0]).station.sequence].append(digest)

    def mark(digest: str, err: ChainError) -> None:
        for v in groups[digest]:
            v.fail(err)

    expected = 1
    for seq in sorted(by_seq):
        digests = by_seq[seq]
        if len(digests) > 1:
            for d in digests:
                mark(d, ChainDuplicate(f"sequence {seq} is used by {len(digests)} different certificates"))
        if seq > expected:
            missing = f"{expected}" if seq - 1 == expected else f"{expected}..{seq - 1}"
            for d in digests:
                mark(d, ChainGap(f"chain gap at sequence {missing}: certificate(s) missing before #{seq}"))
        elif len(by_seq.get(seq - 1, ())) == 1:
            prev_digest = by_seq[seq - 1][0]
            for d in digests:
                err = _link_problem(seq, _cert(groups[d][0]), prev_digest, _cert(groups[prev_digest][0]))
                if err is not None:
                    mark(d, err)
        expected = seq + 1


Chained = Certificate | DestructionRecord


def _cert(v: Verdict) -> Chained:
    r = v.record
    assert r is not None  # only authentic verdicts are grouped
    return r


def _link_problem(seq: int, cert: Chained, prev_digest: str, prev: Chained) -> ChainError | None:
    if cert.station.previous != prev_digest:
        return ChainBreak(f"#{seq} does not link to the certificate #{seq - 1} present here")
    if _when(cert.issued_at) < _when(prev.issued_at):
        return ChainReordered(f"#{seq} is dated before #{seq - 1}")
    return None
