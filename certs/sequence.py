"""The station's certificate sequence: numbered, hash-linked, crash-safe.

Every record a station key signs in its chain (certificates, failure reports and destruction records
alike) takes the next sequence number and names the SHA-256 of the previous signed certificate.  The state lives in
``<key_dir>/sequence.json``; ``sequence.lock`` (``flock``) serialises stations that finish several
drives at once.

Crash safety (a two-phase commit, every write fsync'd and atomic):

1. write the state with a *pending* entry: the next number, the new certificate's hash, its files;
2. write the certificate files atomically (PDF first, the signed JSON last);
3. write the state with the pending entry committed.

On the next issuance a leftover pending entry is resolved: if the signed JSON landed intact it is
committed (the chain continues after it), otherwise its stray files are removed and the number is
reused.  A crash can therefore neither skip a number (gap) nor use one twice (duplicate).
If the state file is lost, it is rebuilt from the newest certificate of this key in the cert dir.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from certs.canonical import parse_json
from certs.errors import MalformedEnvelope, SequenceError, VerificationError
from certs.fsio import atomic_write
from certs.jws import CHAINED_TYPES, parse_envelope

STATE_FILE = "sequence.json"
LOCK_FILE = "sequence.lock"


@dataclass(frozen=True)
class Pending:
    sequence: int
    digest: str
    files: tuple[str, ...]  # absolute paths; the signed JSON is the last one


@dataclass(frozen=True)
class SequenceState:
    kid: str
    sequence: int  # last committed number (0: none yet)
    last_digest: str | None
    pending: Pending | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kid": self.kid, "sequence": self.sequence, "last_digest": self.last_digest}
        if self.pending:
            out["pending"] = {
                "sequence": self.pending.sequence,
                "digest": self.pending.digest,
                "files": list(self.pending.files),
            }
        return out

    @classmethod
    def from_json(cls, d: Any, source: str) -> SequenceState:
        try:
            if not isinstance(d, dict):
                raise TypeError("not an object")
            p = d.get("pending")
            pending = None
            if p is not None:
                pending = Pending(
                    sequence=int(p["sequence"]), digest=str(p["digest"]), files=tuple(p["files"])
                )
            last = d["last_digest"]
            return cls(
                kid=str(d["kid"]),
                sequence=int(d["sequence"]),
                last_digest=None if last is None else str(last),
                pending=pending,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SequenceError(f"{source} is corrupt: {e}") from e


class Sequencer:
    """Hands out sequence numbers for one station key.  Use :meth:`locked` around an issuance."""

    def __init__(self, key_dir: Path, kid: str, cert_dir: Path) -> None:
        self.key_dir = key_dir
        self.kid = kid
        self.cert_dir = cert_dir
        self.path = key_dir / STATE_FILE

    @contextmanager
    def locked(self) -> Iterator[SequenceState]:
        """Hold the station's sequence lock; yield the recovered, committed state."""
        fd = os.open(self.key_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._recover(self._load())
        finally:
            os.close(fd)  # releases the lock

    def _write(self, state: SequenceState) -> None:
        atomic_write(
            self.path, (json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n").encode(), mode=0o600
        )

    def _load(self) -> SequenceState:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._rebuild()
        try:
            state = SequenceState.from_json(parse_json(data, str(self.path)), str(self.path))
        except MalformedEnvelope as e:
            raise SequenceError(f"{self.path} is corrupt: {e.message}") from e
        if state.kid != self.kid:
            raise SequenceError(
                f"{self.path} belongs to key {state.kid[:16]}, the station key is {self.kid[:16]}",
                hint="the station key changed: move the old sequence.json aside together with the old key",
            )
        return state

    def _rebuild(self) -> SequenceState:
        """No state file: continue after the newest certificate of this key in the cert dir (if any)."""
        best: tuple[int, str] | None = None
        if self.cert_dir.is_dir():
            for p in self.cert_dir.glob("*.json"):
                try:
                    env = parse_envelope(p.read_bytes())
                    if env.typ not in CHAINED_TYPES or env.kid != self.kid:
                        continue
                    env.verify_signature()
                    payload = parse_json(env.payload_bytes, str(p))
                except VerificationError:
                    continue  # not intact, or not a certificate: it cannot be the chain's head
                station = payload.get("station") if isinstance(payload, dict) else None
                seq = station.get("sequence") if isinstance(station, dict) else None
                if isinstance(seq, int) and (best is None or seq > best[0]):
                    best = (seq, env.digest)
        if best is None:
            return SequenceState(kid=self.kid, sequence=0, last_digest=None)
        return SequenceState(kid=self.kid, sequence=best[0], last_digest=best[1])

    def _recover(self, state: SequenceState) -> SequenceState:
        p = state.pending
        if p is None:
            return state
        signed = Path(p.files[-1])
        landed = False
        if signed.exists():
            try:
                landed = parse_envelope(signed.read_bytes()).digest == p.digest
            except VerificationError:
                landed = False
        if landed:
            state = SequenceState(kid=state.kid, sequence=p.sequence, last_digest=p.digest)
        else:
            for f in p.files:
                path = Path(f)
                if path.exists():
                    path.unlink()
            state = SequenceState(kid=state.kid, sequence=state.sequence, last_digest=state.last_digest)
        self._write(state)
        return state

    def begin(self, state: SequenceState, sequence: int, digest: str, files: list[Path]) -> SequenceState:
        if sequence != state.sequence + 1:
            raise SequenceError(f"sequence {sequence} does not follow {state.sequence}")
        pending = SequenceState(
            kid=state.kid,
            sequence=state.sequence,
            last_digest=state.last_digest,
            pending=Pending(sequence=sequence, digest=digest, files=tuple(str(f.resolve()) for f in files)),
        )
        self._write(pending)
        return pending

    def commit(self, state: SequenceState) -> SequenceState:
        if state.pending is None:
            raise SequenceError("nothing to commit")
        done = SequenceState(kid=state.kid, sequence=state.pending.sequence, last_digest=state.pending.digest)
        self._write(done)
        return done
