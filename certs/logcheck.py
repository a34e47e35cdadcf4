"""What ``station verify`` checks beyond each record: the hub's inclusion proofs, the chain heads.

* :func:`check_log` (``--log HUBKEY.pem``): each authentic record must come with an inclusion proof
  (``<id>.log.json`` next to it, or a ``--log-proof`` file naming its hash) that leads to the root of a
  tree head signed by the hub's log key.  A record without one fails with ``log_proof_missing``.
* :func:`check_heads` (``--chain`` with ``--chain-head FILE`` or chain-head files in the folders):
  each trusted chain head's number N must be present with the hash it names.  A folder whose newest
  number is lower lost certificates (``chain_truncated``); one whose number N has another hash holds
  another branch of a fork (``chain_fork``).

Like the rest of the verifier these never raise: every failure is a reason on a verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certs.chainhead import ChainHead, read_chain_head
from certs.errors import (
    CertError,
    ChainFork,
    ChainGap,
    ChainTruncated,
    InternalError,
    LogProofMissing,
    ProofMalformed,
)
from certs.tlog import LogKeys, LogProof, TreeHead, check_inclusion, read_log_proof, sidecar_name
from certs.trust import TrustStore
from certs.verify import Verdict, read_capped


@dataclass
class FileCheck:
    """The verdict on a file that is not a record: a chain head, a stray proof, a tree head."""

    path: str
    kind: str  # "chain_head", "log_proof", "consistency"
    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return self.problems[0][0] if self.problems else "ok"

    def fail(self, err: CertError) -> None:
        self.problems.append((err.reason, err.message))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "ok": self.ok,
            "reason": self.reason,
            "problems": [{"reason": r, "message": m} for r, m in self.problems],
            "notes": list(self.notes),
            **self.details,
        }


def guarded_check(check: FileCheck, run: Callable[[], None]) -> FileCheck:
    """Run one check; a defect of the verifier becomes ``internal_error`` on this file only."""
    try:
        run()
    except CertError as e:
        check.fail(e)
    except Exception as e:  # noqa: BLE001 - totality, as certs.verify._guarded
        check.fail(InternalError(f"the verifier failed on this file ({type(e).__name__}: {str(e)[:200]})"))
    return check


# --- inclusion proofs ----------------------------------------------------------------------------


def _read_proof(path: Path) -> LogProof:
    return read_log_proof(read_capped(path))


def _sidecars(v: Verdict) -> list[Path]:
    path = Path(v.path)
    names = [path.name.rsplit(".", 1)[0] + ".log.json"]
    if v.certificate is not None:
        names.append(sidecar_name(v.certificate.certificate_id))
    return [path.with_name(n) for n in dict.fromkeys(names)]


def _proof_for(v: Verdict, given: dict[str, LogProof]) -> LogProof:
    assert v.digest is not None
    if v.digest in given:
        return given[v.digest]
    for candidate in _sidecars(v):
        if candidate.is_file():
            return _read_proof(candidate)
    raise LogProofMissing(
        f"no inclusion proof for this record ({_sidecars(v)[-1].name} next to it, or --log-proof)"
    )


def _check_one(v: Verdict, keys: LogKeys, given: dict[str, LogProof]) -> None:
    proof = _proof_for(v, given)
    assert v.digest is not None
    head: TreeHead = check_inclusion(proof, v.digest, keys)
    v.log = {
        "leaf_index": proof.leaf_index,
        "tree_size": head.tree_size,
        "timestamp": head.timestamp,
        "log_id": head.log_id,
    }
    v.notes.append(f"in the hub's log: leaf {proof.leaf_index} of the {head.describe()}")


def _given_proofs(paths: list[Path]) -> tuple[dict[str, LogProof], list[FileCheck]]:
    given: dict[str, LogProof] = {}
    checks: list[FileCheck] = []
    for p in paths:
        check = FileCheck(str(p), "log_proof")

        def read(p: Path = p, check: FileCheck = check) -> None:
            proof = _read_proof(p)
            given[proof.sha256] = proof
            check.details["sha256"] = proof.sha256

        checks.append(guarded_check(check, read))
    return given, checks


def check_log(verdicts: list[Verdict], keys: LogKeys, proofs: list[Path]) -> list[FileCheck]:
    """Check the inclusion proof of every authentic record; returns the checks of ``proofs`` files
    (a given proof that is unreadable, or names no record verified here, fails)."""
    given, checks = _given_proofs(proofs)
    used: set[str] = set()
    for v in verdicts:
        if v.certificate is None or v.digest is None:
            continue
        used.add(v.digest)
        try:
            _check_one(v, keys, given)
        except CertError as e:
            v.fail(e)
        except Exception as e:  # noqa: BLE001 - totality
            v.fail(InternalError(f"the log check failed ({type(e).__name__}: {str(e)[:200]})"))
    for check in checks:
        if check.ok and check.details.get("sha256") not in used:
            check.fail(ProofMalformed("this proof is for none of the records verified here"))
    return checks


# --- chain heads -------------------------------------------------------------------------------------


def _by_sequence(verdicts: list[Verdict], kid: str) -> dict[int, dict[str, list[Verdict]]]:
    out: dict[int, dict[str, list[Verdict]]] = defaultdict(lambda: defaultdict(list))
    for v in verdicts:
        c = v.certificate
        if c is not None and v.digest is not None and c.station.kid == kid:
            out[c.station.sequence][v.digest].append(v)
    return out


def _compare(head: ChainHead, verdicts: list[Verdict], check: FileCheck) -> None:
    chain = _by_sequence(verdicts, head.station_kid)
    present = chain.get(head.sequence)
    if present is None:
        newest = max(chain, default=0)
        if newest < head.sequence:
            missing = f"#{newest + 1}" + (f" to #{head.sequence}" if newest + 1 < head.sequence else "")
            raise ChainTruncated(
                f"{head.describe()}, but the newest certificate of this key here is "
                f"{'#' + str(newest) if newest else 'none'}: {missing} missing"
            )
        raise ChainGap(f"{head.describe()}, and #{head.sequence} is missing here")
    if head.sha256 not in present:
        fork = ChainFork(
            f"#{head.sequence} here is not the certificate the station published: {head.describe()}"
        )
        for vs in present.values():
            for v in vs:
                v.fail(fork)
        raise fork
    check.notes.append(f"{head.describe()}: present")


def check_heads(verdicts: list[Verdict], paths: list[Path], trust: TrustStore) -> list[FileCheck]:
    """Check each chain-head file, and compare the trusted ones with the records verified."""
    checks: list[FileCheck] = []
    for p in dict.fromkeys(paths):
        check = FileCheck(str(p), "chain_head")

        def run(p: Path = p, check: FileCheck = check) -> None:
            head = read_chain_head(read_capped(p))
            check.details.update(
                station_id=head.station_id,
                station_kid=head.station_kid,
                sequence=head.sequence,
                sha256=head.sha256,
                issued_at=head.issued_at,
            )
            decision = trust.check(head.envelope, head.station_id, head.issued_at)
            check.notes.extend(decision.notes)
            _compare(head, verdicts, check)

        checks.append(guarded_check(check, run))
    return checks
