"""The station's side of the hub's transparency log, and the chain heads it publishes.

During a drain (:mod:`station.sync.drain`), a :class:`LogKeeper`:

* **keeps every inclusion proof.**  The hub answers each upload with the certificate's inclusion
  proof and a signed tree head (:mod:`certs.tlog`).  The proof is checked against the hub's log key
  and kept in the outbox (in the transaction that records the upload) and next to the certificate,
  as ``<id>.log.json`` (replaced by rename; a sidecar lost in a power cut is written again from the
  outbox by the next pass), so the station's folder verifies offline with ``station verify --log``.  The log key is fetched from the
  hub once and pinned in ``$TABULA_HOME/sync/hub-log.pem`` (trust on first use, like SSH host keys):
  a proof signed by another key is refused, never kept.  Certificates sent before the hub had a log,
  or whose answer carried no proof, get theirs fetched by later passes (``GET /api/v1/log/proof``);
* **witnesses the log.**  The newest tree head a pass saw must extend the one kept from earlier
  passes (``sync/tree-head.json``): the hub's consistency proof between them is checked.  A hub that
  rewrote or forked its history is reported (``log_alarm``; ``station sync --status`` shows it) and
  the two tree heads are kept as evidence (``sync/tree-head.conflict.json``);
* **publishes the chain head.**  When the station's newest certificate (number and hash, from its
  sequence state) differs from the last head it published, it signs a new chain head
  (:mod:`certs.chainhead`), sends it (``POST /api/v1/chain-heads``) and, once the hub holds it,
  keeps it as ``chain-head.json`` in the certificate directory.

Nothing here fails an upload or stops a drain: a problem is recorded (``DrainResult.log_error``) and
retried by the next pass.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from certs.chainhead import CHAIN_HEAD_FILE, newest_certificate, read_chain_head, sign_chain_head
from certs.errors import CertError, InconsistentTree, KeyMissing, ProofMismatch
from certs.fsio import atomic_write
from certs.jws import envelope_bytes, parse_envelope
from certs.keys import load_installed_endorsement, load_station_key
from certs.tlog import (
    LogKeys,
    TreeHead,
    check_consistency,
    check_inclusion,
    read_log_key,
    read_log_proof,
    read_tree_head,
    sidecar_name,
)
from host import paths
from station.sync.client import SyncClient
from station.sync.outbox import Item, Outbox

LOG_KEY_FILE = "hub-log.pem"
TREE_HEAD_FILE = "tree-head.json"
CONFLICT_FILE = "tree-head.conflict.json"
#: Proofs fetched per pass for certificates sent without one (the rest wait for the next pass).
BACKFILL_PER_PASS = 200


def _pretty(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("ascii")


class LogKeeper:
    """What one drain pass does for the log and the chain head (see the module docstring)."""

    def __init__(self, box: Outbox, client: SyncClient, home: Path | None) -> None:
        self.box = box
        self.client = client
        self.home = home if home is not None else paths.home()
        self.kept = 0
        self.error: str | None = None
        self.alarm: str | None = None
        self.head_published: int | None = None
        self._keys: LogKeys | None = None
        self._no_log = False
        self._newest: TreeHead | None = None
        self.pending_sidecars: dict[int, bytes] = {}  # proofs of a batch, written once it is recorded

    @property
    def sync_dir(self) -> Path:
        return self.home / "sync"

    # --- proofs -----------------------------------------------------------------------------------

    def keys(self) -> LogKeys | None:
        """The hub's log key: pinned in sync/hub-log.pem, fetched from the hub the first time."""
        if self._keys is None and not self._no_log:
            pinned = self.sync_dir / LOG_KEY_FILE
            if pinned.is_file():
                data = pinned.read_bytes()
            else:
                answer = self.client.log_key()
                if answer.verdict != "sent" or not isinstance(answer.body, bytes):
                    self._no_log = True  # an older hub: no log to keep proofs of
                    return None
                data = answer.body
                read_log_key(data, "the hub's log key")
                self.sync_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(pinned, data)
            kid, key = read_log_key(data, str(pinned))
            self._keys = {kid: key}
        return self._keys

    def proof_in(self, item: Item, body: Any) -> bytes | None:
        """The checked proof an upload's 2xx answer carries (None: none, or not a good one; a later
        pass fetches it).  The caller stores it with the sent state, then :meth:`write_sidecar`."""
        doc = body.get("log") if isinstance(body, dict) else None
        if item.kind != "certificate" or doc is None:
            return None
        return self._checked(item, doc)

    def _checked(self, item: Item, doc: Any) -> bytes | None:
        try:
            keys = self.keys()
            if keys is None:
                return None
            proof = read_log_proof(doc)
            if proof.certificate_id != item.doc_id:
                raise ProofMismatch(f"the hub sent the proof of {proof.certificate_id} for {item.doc_id}")
            head = check_inclusion(proof, parse_envelope(item.body).digest, keys)
        except (CertError, OSError) as e:
            self.error = f"inclusion proof of {item.doc_id}: {getattr(e, 'message', None) or e}"
            return None
        if self._newest is None or head.tree_size > self._newest.tree_size:
            self._newest = head
        self.kept += 1
        return _pretty(proof.to_json())

    def write_sidecar(self, item: Item, data: bytes) -> None:
        """``<id>.log.json`` next to the certificate.  Not fsync'd: the outbox holds the durable copy
        (committed with the sent state), and a sidecar a power cut lost is written again from it
        (:meth:`restore_sidecars`), so a pass costs no extra disk flush per certificate."""
        try:
            _replace(_cert_dir(self.home, item.source) / sidecar_name(item.doc_id), data)
        except OSError as e:
            self.error = f"{sidecar_name(item.doc_id)}: {e.strerror}"

    def restore_sidecars(self) -> None:
        """Write again the sidecars of kept proofs that are missing (one listing per folder)."""
        listed: dict[Path, set[str]] = {}
        for doc_id, source in self.box.proven():
            folder = _cert_dir(self.home, source)
            if folder not in listed:
                listed[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if sidecar_name(doc_id) not in listed[folder] and (folder / f"{doc_id}.json").exists():
                data = self.box.proof_of(doc_id)
                if data is not None:
                    self.write_sidecar(Item(0, doc_id, "certificate", b"", "", 0, 0, source), data)

    def backfill(self, limit: int = BACKFILL_PER_PASS) -> None:
        """Fetch the proofs of certificates the hub holds that the station has none for yet."""
        for item in self.box.without_proof(limit):
            try:
                if self.keys() is None:
                    return
            except (CertError, OSError) as e:
                self.error = f"the hub's log key: {getattr(e, 'message', None) or e}"
                return
            answer = self.client.log_proof(item.doc_id)
            if answer.verdict == "sent":
                data = self._checked(item, answer.body)
                if data is not None:
                    self.box.keep_proof(item.seq, data, time.time())
                    self.write_sidecar(item, data)
            elif answer.code != "not_found":  # not yet in the log, or the hub in trouble: next pass
                self.error = f"inclusion proof of {item.doc_id}: {answer.message}"
                return

    # --- witnessing ---------------------------------------------------------------------------------

    def witness(self) -> None:
        """Check the newest tree head seen against the one kept from earlier passes."""
        new, keys = self._newest, self._keys
        if new is None or keys is None:
            return
        kept = self.sync_dir / TREE_HEAD_FILE
        try:
            old = read_tree_head(kept.read_bytes(), keys) if kept.is_file() else None
            if old is not None:
                self._consistent(old, new)
        except InconsistentTree as e:
            self.alarm = (
                f"the hub's transparency log is not consistent with what it showed before: {e.message}"
            )
            atomic_write(self.sync_dir / CONFLICT_FILE, _pretty(new.to_json()))
            return
        except CertError as e:
            self.error = f"checking the hub's log: {e.message}"
            return
        if old is None or new.tree_size >= old.tree_size:
            atomic_write(kept, _pretty(new.to_json()))

    def _consistent(self, a: TreeHead, b: TreeHead) -> None:
        old, new = (a, b) if a.tree_size <= b.tree_size else (b, a)
        proof: list[bytes] = []
        if 0 < old.tree_size < new.tree_size:
            answer = self.client.request(
                "GET",
                "/api/v1/log/consistency",
                params={"first": str(old.tree_size), "second": str(new.tree_size)},
            )
            doc = answer.body if answer.verdict == "sent" and isinstance(answer.body, dict) else {}
            proof = [bytes.fromhex(h) for h in doc.get("consistency") or [] if isinstance(h, str)]
            if not doc:
                raise CertError(f"no consistency proof from the hub: {answer.message}")
        check_consistency(old, new, proof)

    # --- chain head ---------------------------------------------------------------------------------

    def publish_head(self) -> None:
        """Sign and send the chain head when the newest certificate changed since the last one sent."""
        key_dir, target = self.home / "keys", self.home / "certs" / CHAIN_HEAD_FILE
        try:
            newest = newest_certificate(key_dir)
            if newest is None or _published(target) == newest or self.keys() is None:
                return  # nothing new, or a hub older than the log and the chain heads
            station = load_station_key(key_dir)
            endorsement = load_installed_endorsement(key_dir, station)
            claimed = endorsement.envelope.to_json() if endorsement is not None else None
            body = envelope_bytes(sign_chain_head(station, *newest, endorsement=claimed))
        except KeyMissing:
            return  # no station key: nothing was ever signed here
        except (CertError, OSError) as e:
            self.error = f"chain head: {getattr(e, 'message', None) or e}"
            return
        answer = self.client.publish_chain_head(body)
        if answer.verdict != "sent":
            self.error = f"chain head #{newest[0]}: {answer.message}"
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, body)
        self.head_published = newest[0]


def _cert_dir(home: Path, source: str) -> Path:
    """Where a certificate's files are: the folder it was queued from, else ``$TABULA_HOME/certs``."""
    folder = Path(source).parent if source else None
    return folder if folder is not None and folder.is_dir() else home / "certs"


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by rename (a reader sees the old file or the new one, whole)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _published(path: Path) -> tuple[int, str] | None:
    """(number, hash) the chain head kept at ``path`` names, if it is a valid one."""
    try:
        head = read_chain_head(path.read_bytes())
    except (OSError, CertError, ValueError):
        return None
    return head.sequence, head.sha256
