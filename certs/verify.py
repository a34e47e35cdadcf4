"""Offline verification of signed certificates (JSON files, PDFs, directories of both).

For each certificate, in this order (the first failure is the verdict's reason):

1. the file is a well-formed EdDSA flattened JWS of type ``tabula-certificate+json`` (``malformed``);
2. the signature matches the header's key (``bad_signature``);
3. the key is trusted, directly or through an organisation's endorsement (``unknown_key``,
   ``unendorsed_key``);
4. the payload is canonical JSON and a valid ``tabula.certificate/1`` record signed by the key it
   names (``schema_error``);
5. the record is a certified erasure, not a failure report (``failure_report``).

With ``chain=True`` the certificates of each station key are then checked as a sequence: a missing
number (``chain_gap``), two certificates with one number (``chain_duplicate``), a previous-hash that
does not match (``chain_break``) or a date going backwards (``chain_reordered``).  The same
certificate seen twice (its JSON and its PDF) counts once.  A deleted *newest* certificate cannot be
detected from the files alone: compare the newest sequence number with the station's counter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from certs.canonical import CanonicalError, canonical_json, parse_json
from certs.errors import (
    CertError,
    ChainBreak,
    ChainDuplicate,
    ChainError,
    ChainGap,
    ChainReordered,
    MalformedEnvelope,
    NotASuccess,
    SchemaError,
    Unreadable,
)
from certs.jws import TYP_CERTIFICATE, Envelope, parse_envelope
from certs.model import Certificate
from certs.pdf import extract_signed
from certs.trust import TrustStore


@dataclass
class Verdict:
    path: str
    certificate: Certificate | None = None
    digest: str | None = None
    trust: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)  # (reason code, message)

    @property
    def ok(self) -> bool:
        """A valid, authentic, certified erasure with no chain problem."""
        return not self.problems and self.certificate is not None and self.certificate.success

    @property
    def authentic(self) -> bool:
        """Signature, trust and schema are fine (it may still be a failure report)."""
        return self.certificate is not None

    @property
    def reason(self) -> str:
        return self.problems[0][0] if self.problems else "ok"

    def fail(self, err: CertError) -> None:
        self.problems.append((err.reason, err.message))

    def summary(self) -> str:
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
        c = self.certificate
        return {
            "path": self.path,
            "ok": self.ok,
            "reason": self.reason,
            "problems": [{"reason": r, "message": m} for r, m in self.problems],
            "trust": self.trust,
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
        }


class Verifier:
    """Verifies certificates against one trust store; caches keys and endorsements across files."""

    def __init__(self, trust: TrustStore) -> None:
        self.trust = trust

    def verify_envelope(self, data: Any, path: str) -> Verdict:
        verdict = Verdict(path=path)
        try:
            env = parse_envelope(data, expect=TYP_CERTIFICATE)
            verdict.digest = env.digest
            env.verify_signature()
            verdict.certificate, verdict.trust = self._content(env)
        except CertError as e:
            verdict.fail(e)
            return verdict
        cert = verdict.certificate
        if not cert.success:
            why = "; ".join(cert.result.reasons)
            verdict.fail(
                NotASuccess(f"failure report, not an erasure certificate: {cert.result.outcome}: {why}")
            )
        return verdict

    def _content(self, env: Envelope) -> tuple[Certificate, str]:
        payload: Any = None
        bad_json: MalformedEnvelope | None = None
        try:
            payload = parse_json(env.payload_bytes, "payload")
        except MalformedEnvelope as e:
            bad_json = e
        station = payload.get("station") if isinstance(payload, dict) else None
        station_id = station.get("id") if isinstance(station, dict) else None
        trust = self.trust.check(env, station_id if isinstance(station_id, str) else None)
        if bad_json is not None:
            raise SchemaError(f"signed payload is not valid JSON: {bad_json.message}")
        try:
            canonical = canonical_json(payload)
        except CanonicalError as e:
            raise SchemaError(f"signed payload holds a value a certificate cannot: {e}") from e
        if canonical != env.payload_bytes:
            raise SchemaError("signed payload is not canonical JSON (sorted keys, no spaces, UTF-8)")
        cert = Certificate.from_dict(payload)
        if cert.station.kid != env.kid:
            raise SchemaError(
                f"certificate names key {cert.station.kid[:16]} but is signed by {env.kid[:16]}"
            )
        return cert, trust

    def verify_file(self, path: Path) -> Verdict:
        try:
            data = path.read_bytes()
        except OSError as e:
            v = Verdict(path=str(path))
            v.fail(Unreadable(f"cannot read {path}: {e.strerror}"))
            return v
        if data.startswith(b"%PDF-"):
            try:
                data = extract_signed(data, str(path))
            except CertError as e:
                v = Verdict(path=str(path))
                v.fail(e)
                return v
        return self.verify_envelope(data, str(path))

    def verify_paths(self, paths: Iterable[Path], *, chain: bool = False) -> list[Verdict]:
        verdicts = [self.verify_file(p) for p in expand(paths)]
        if chain:
            check_chain(verdicts)
        return verdicts


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; directories recursively (their *.json and *.pdf files, hidden files skipped)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in (".json", ".pdf") and not f.name.startswith("."):
                    yield f
        else:
            yield p


def _when(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def check_chain(verdicts: list[Verdict]) -> None:
    """Mark chain problems on the verdicts of authentic certificates, grouped by station key."""
    by_kid: dict[str, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for v in verdicts:
        if v.certificate is not None and v.digest is not None:
            by_kid[v.certificate.station.kid][v.digest].append(v)
    for groups in by_kid.values():
        by_seq: dict[int, list[str]] = defaultdict(list)
        for digest, vs in groups.items():
            by_seq[vs[0].certificate.station.sequence].append(digest)  # type: ignore[union-attr]

        def mark(digest: str, err: ChainError, groups: dict[str, list[Verdict]] = groups) -> None:
            for v in groups[digest]:
                v.fail(err)

        expected = 1
        for seq in sorted(by_seq):
            digests = by_seq[seq]
            if len(digests) > 1:
                for d in digests:
                    mark(
                        d, ChainDuplicate(f"sequence {seq} is used by {len(digests)} different certificates")
                    )
            if seq > expected:
                missing = f"{expected}" if seq - 1 == expected else f"{expected}..{seq - 1}"
                for d in digests:
                    mark(
                        d, ChainGap(f"chain gap at sequence {missing}: certificate(s) missing before #{seq}")
                    )
            elif len(by_seq.get(seq - 1, ())) == 1:
                prev_digest = by_seq[seq - 1][0]
                prev = groups[prev_digest][0].certificate
                for d in digests:
                    cert = groups[d][0].certificate
                    assert cert is not None and prev is not None
                    if cert.station.previous != prev_digest:
                        mark(
                            d, ChainBreak(f"#{seq} does not link to the certificate #{seq - 1} present here")
                        )
                    elif _when(cert.issued_at) < _when(prev.issued_at):
                        mark(d, ChainReordered(f"#{seq} is dated before #{seq - 1}"))
            expected = seq + 1
