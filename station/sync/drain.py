"""Drain the outbox to the hub: every document on its own, each outcome recorded the moment it is known.

One pass takes the pending documents whose own backoff is over (all of them for ``station sync``,
which a person runs to send *now*): fresh ones in queue order first, then those that failed before,
so a document the hub keeps failing never delays the others.  Certificates go in batches (``batch``
of the configuration, one request each) to a hub that takes them, anything else (and everything, to
an older hub) one per request.  Each upload's outcome (a batch's: every item's, in one transaction)
is committed to the outbox (fsync'd) before the next request starts, so a drainer killed at any
moment loses at most the answer to the request in flight, and that only causes a harmless re-upload.

* a transient failure of one document (5xx, 503 + ``Retry-After``, a broken connection) gives that
  document alone an exponential, jittered backoff (at least the hub's ``Retry-After``); the pass goes
  on with the others;
* the pass halts, leaving the rest for later, when the hub as a whole is in trouble: unreachable,
  asking to slow down (429; with ``retries``, a short ``Retry-After`` is first waited out once per
  document), a configuration problem (401, wrong URL), an upload that timed out or
  ran past its deadline, or ``halt_after`` documents failing in a row.  The next background pass
  then waits an outbox-wide backoff (``respect_backoff``);
* a document refused for good is kept as *rejected* with the hub's reason until requeued;
* when the pass was not halted, the hub's transparency log: each certificate's inclusion proof is
  checked and kept, missing ones fetched, the station's chain head published, and the log's
  consistency with what it showed before checked (:mod:`station.sync.logsync`); then the lot
  references whose check waited for the hub are asked again (:mod:`station.sync.lots`).

One drainer at a time per outbox (``flock``, released by the kernel if the process dies).
"""

from __future__ import annotations

import dataclasses
import fcntl
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from host.errors import TabulaError
from station.sync.answer import Answer
from station.sync.client import BATCH_BYTES, SyncClient
from station.sync.config import SyncConfig, load_config
from station.sync.errors import SyncConfigError
from station.sync.logsync import LogKeeper
from station.sync.lots import recheck_pending
from station.sync.outbox import Item, Outbox, outbox_dir, reconcile
from station.sync.state import status


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random."""

    base: float = 2.0
    cap: float = 600.0
    factor: float = 2.0

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        if failures <= 0:
            return 0.0
        d = min(self.cap, self.base * self.factor ** min(failures - 1, 64))
        return d / 2 + rng() * d / 2


@dataclass
class DrainResult:
    sent: int = 0
    rejected: int = 0
    failed: int = 0  # transient failures of documents in this call (each now waits its own backoff)
    pending: int = 0
    retrying: int = 0  # pending documents waiting out their own backoff
    queued_from_disk: int = 0
    error: str | None = None  # why the pass halted
    config_error: bool = False  # ... because the settings are unusable (no token, http:// refused, ...)
    busy: bool = False  # another drainer holds the lock
    deferred: bool = False  # the outbox-wide backoff is not over yet (background drains only)
    proofs_kept: int = 0  # inclusion proofs of the hub's log checked and kept (station.sync.logsync)
    chain_head: int | None = None  # the number the chain head published in this pass names
    log_error: str | None = None  # a proof or chain head that could not be kept (retried next pass)
    log_alarm: str | None = None  # the hub's log is not consistent with what it showed before
    lots_checked: int = 0  # lot references whose pending check the hub answered (station.sync.lots)

    @property
    def complete(self) -> bool:
        return self.error is None and not self.busy and not self.deferred and self.pending == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"complete": self.complete}


@dataclass(frozen=True)
class _Pass:
    retries: int
    backoff: Backoff
    respect_backoff: bool
    halt_after: int
    stop: threading.Event | None
    sleep: Callable[[float], None]

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


class _DrainLock:
    """One drainer at a time per outbox (``flock``; released by the kernel if the process dies)."""

    def __init__(self, home: Path | None) -> None:
        directory = outbox_dir(home)
        directory.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(directory / "drain.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self, wait: bool) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        os.close(self.fd)


def drain(
    home: Path | None = None,
    config: SyncConfig | None = None,
    *,
    retries: int = 0,
    backoff: Backoff = Backoff(),
    respect_backoff: bool = False,
    halt_after: int = 5,
    wait_for_lock: bool = False,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    """Upload the pending documents now; returns what happened (also recorded in the outbox).

    ``retries``: a document that fails transiently is tried again within this call, up to that many
    times, when its backoff ends within ``backoff.cap`` seconds (``station sync`` waits; the daemon
    does not).  ``respect_backoff``: background drains honour the outbox-wide backoff after a halted
    pass and each document's own backoff, so a hub in trouble is not hammered.
    """
    config = config if config is not None else load_config(home)
    options = _Pass(retries, backoff, respect_backoff, max(1, halt_after), stop, sleep)
    result = DrainResult()
    lock = _DrainLock(home)
    try:
        if not lock.acquire(wait_for_lock):
            result.busy = True
            return result
        result.queued_from_disk = reconcile(home)
        with Outbox(home) as box:
            _drain_outbox(box, config, result, options, home)
            counts = box.counts()
            result.pending, result.retrying = counts["pending"], counts["retrying"]
    finally:
        lock.close()
    return result


def _drain_outbox(box: Outbox, config: SyncConfig, result: DrainResult, p: _Pass, home: Path | None) -> None:
    meta = box.meta()
    failures = int(meta.get("consecutive_failures", "0"))
    if p.respect_backoff and time.time() < float(meta.get("next_attempt_at", "0")):
        result.deferred = True
        return
    try:
        client = SyncClient(config)
    except SyncConfigError as e:
        result.config_error = True
        _halted(box, result, Answer("halt", e.message), failures, p.backoff)
        return
    with client:
        keeper = LogKeeper(box, client, home)
        halt = _sweeps(box, keeper, result, p)
        if halt is None and not p.stopped():
            _log_work(box, keeper, result)
            result.lots_checked = recheck_pending(box, client)
    if halt is not None:
        _halted(box, result, halt, failures, p.backoff)
    elif not p.stopped() or result.sent:
        now = repr(time.time())
        box.set_meta(
            {
                "last_attempt_at": now,
                "consecutive_failures": "0",
                "next_attempt_at": None,
                "last_error": None,
                "last_error_at": None,
            }
        )


def _log_work(box: Outbox, keeper: LogKeeper, result: DrainResult) -> None:
    """After the uploads: the missing proofs, the chain head, the log's consistency (logsync)."""
    keeper.restore_sidecars()
    keeper.backfill()
    keeper.publish_head()
    keeper.witness()
    result.proofs_kept = keeper.kept
    result.chain_head = keeper.head_published
    result.log_error, result.log_alarm = keeper.error, keeper.alarm
    meta: dict[str, str | None] = {"log_error": keeper.error, "log_alarm": keeper.alarm}
    if keeper.head_published is not None:
        meta |= {"chain_head_sequence": str(keeper.head_published), "chain_head_at": repr(time.time())}
    box.set_meta(meta)


def _halted(box: Outbox, result: DrainResult, answer: Answer, failures: int, backoff: Backoff) -> None:
    """The pass ended early: record why, and the outbox-wide backoff of the next background pass."""
    now = time.time()
    wait = max(backoff.delay(failures + 1), answer.retry_after or 0.0)
    result.error = answer.message
    box.set_meta(
        {
            "last_attempt_at": repr(now),
            "last_error": answer.message,
            "last_error_at": repr(now),
            "consecutive_failures": str(failures + 1),
            "next_attempt_at": repr(now + wait),
        }
    )


def _sweeps(box: Outbox, keeper: LogKeeper, result: DrainResult, p: _Pass) -> Answer | None:
    """Sweep every due document once, then (``retries``) the ones that failed, once their backoff ends."""
    tries: dict[int, int] = {}
    seqs = box.due(time.time() if p.respect_backoff else math.inf)
    while seqs:
        halt = _sweep(box, keeper, seqs, tries, result, p)
        if halt is not None or p.stopped():
            return halt
        seqs, wake = _retry_round(box, tries, p)
        if seqs:
            p.sleep(max(0.0, wake - time.time()))
    return None


def _retry_round(box: Outbox, tries: dict[int, int], p: _Pass) -> tuple[list[int], float]:
    """The documents that failed in this call and may be tried again soon, and when."""
    again = {seq for seq, n in tries.items() if n <= p.retries}
    if not again:
        return [], 0.0
    now = time.time()
    soon = [
        (when, seq) for seq, when in box.backoffs().items() if seq in again and when - now <= p.backoff.cap
    ]
    if not soon:
        return [], 0.0
    wake = min(when for when, _ in soon)
    return sorted(seq for when, seq in soon if when <= wake), wake


def _sweep(
    box: Outbox, keeper: LogKeeper, seqs: list[int], tries: dict[int, int], result: DrainResult, p: _Pass
) -> Answer | None:
    streak = [0]  # documents failing in a row
    for group in _groups(box, seqs, keeper.client):
        if p.stopped():
            return None
        answers = _upload_batch(keeper.client, group, p) if len(group) > 1 else None
        if answers is None:  # one by one: each answer recorded before the next upload starts
            for item in group:
                halt = _settle(box, keeper, item, _upload(keeper.client, item, p), tries, result, p, streak)
                if halt is not None:
                    return halt
            continue
        with box.transaction():  # a batch's outcomes: durable together, one disk flush
            for item, answer in zip(group, answers, strict=True):
                halt = _settle(box, keeper, item, answer, tries, result, p, streak, sidecar=False)
                if halt is not None:
                    break
        for item, answer in zip(group, answers, strict=True):  # after the commit, as one by one
            if answer.verdict == "sent" and item.seq in keeper.pending_sidecars:
                keeper.write_sidecar(item, keeper.pending_sidecars.pop(item.seq))
        if halt is not None:
            return halt
    return None


def _groups(box: Outbox, seqs: list[int], client: SyncClient) -> Iterator[list[Item]]:
    """The due documents in order: runs of certificates in batches (while the hub takes batches),
    anything else alone.  Each is read when its turn comes (it may have been settled meanwhile)."""
    group: list[Item] = []
    size = 0
    for seq in seqs:
        item = box.item(seq)
        if item is None:
            continue  # no longer pending (requeued or settled by someone else meanwhile)
        batchable = item.kind == "certificate" and client.batch_supported
        if group and (
            not batchable or len(group) >= client.batch_items or size + len(item.body) > BATCH_BYTES
        ):
            yield group
            group, size = [], 0
        if not batchable:
            yield [item]
            continue
        group.append(item)
        size += len(item.body)
    if group:
        yield group


def _settle(
    box: Outbox,
    keeper: LogKeeper,
    item: Item,
    answer: Answer,
    tries: dict[int, int],
    result: DrainResult,
    p: _Pass,
    streak: list[int],
    *,
    sidecar: bool = True,
) -> Answer | None:
    """Record one document's answer (with its log proof); the answer that halts the pass, if any."""
    proof = keeper.proof_in(item, answer.body) if answer.verdict == "sent" else None
    _record(box, item, answer, p.backoff, result, proof)
    if proof is not None:
        if sidecar:
            keeper.write_sidecar(item, proof)
        else:
            keeper.pending_sidecars[item.seq] = proof
    if answer.verdict == "retry":
        tries[item.seq] = tries.get(item.seq, 0) + 1
        streak[0] += 1
    elif answer.verdict != "halt":
        streak[0] = 0
    if answer.halt:
        return dataclasses.replace(answer, message=f"{item.kind} {item.doc_id}: {answer.message}")
    if streak[0] >= p.halt_after:
        return Answer("halt", f"{streak[0]} documents in a row failed; the last: {answer.message}")
    return None


def _upload(client: SyncClient, item: Item, p: _Pass) -> Answer:
    """One upload.  A foreground drain (``retries``) waits out a 429's short ``Retry-After`` once and
    sends again, so a person's `station sync` keeps going against a rate-limited hub."""
    answer = client.upload(item)
    return client.upload(item) if _waited_out(answer, p) else answer


def _upload_batch(client: SyncClient, group: list[Item], p: _Pass) -> list[Answer] | None:
    """One batch (None: send these one by one); a 429 for the whole request as :func:`_upload`."""
    answers = client.upload_batch(group)
    return client.upload_batch(group) if answers and _waited_out(answers[0], p) else answers


def _waited_out(answer: Answer, p: _Pass) -> bool:
    """A 429 whose short ``Retry-After`` a foreground drain waited out (then it sends again)."""
    if answer.status != 429 or p.retries == 0 or p.stopped():
        return False
    wait = answer.retry_after if answer.retry_after is not None else p.backoff.delay(1)
    if wait > p.backoff.cap:
        return False
    p.sleep(wait)
    return True


def _record(
    box: Outbox, item: Item, answer: Answer, backoff: Backoff, result: DrainResult, proof: bytes | None = None
) -> None:
    """One upload's outcome (with the certificate's log proof), committed before the next upload starts."""
    now = time.time()
    if answer.verdict == "sent":
        box.mark_sent(item.seq, now, proof)
        result.sent += 1
    elif answer.verdict == "rejected":
        box.mark_rejected(item.seq, answer.message, answer.code, now)
        result.rejected += 1
    elif answer.verdict == "retry":
        wait = max(backoff.delay(item.failures + 1), answer.retry_after or 0.0)
        box.mark_failed(item.seq, answer.message, answer.code, now, now + wait)
        result.failed += 1


class SyncDaemon:
    """Drains the outbox periodically in a background thread (TUI, autorun) or in the foreground.

    ``wake()`` triggers a drain now (e.g. right after a certificate was issued); a halted pass waits an
    exponential, jittered delay, and a document's own backoff wakes it when it ends.  Errors are
    recorded in the outbox (see :func:`status`), never lost.
    """

    def __init__(
        self,
        home: Path | None = None,
        config: SyncConfig | None = None,
        *,
        interval: float | None = None,
        backoff: Backoff = Backoff(),
        on_result: Callable[[DrainResult], None] | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.interval = interval
        self.backoff = backoff
        self.on_result = on_result
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SyncDaemon:
        self._thread = threading.Thread(target=self.run, name="tabula-sync", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> DrainResult:
        config = self.config if self.config is not None else load_config(self.home)
        try:
            result = drain(self.home, config, backoff=self.backoff, respect_backoff=True, stop=self._stop)
        except TabulaError as e:
            # An outbox or configuration problem: visible through status(), retried next time.
            result = DrainResult(error=e.message)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _wait_time(self, result: DrainResult) -> float:
        config = self.config if self.config is not None else load_config(self.home)
        interval = self.interval if self.interval is not None else config.interval
        if result.busy:
            return interval
        st = status(self.home)
        now = time.time()
        if (result.error is not None or result.deferred) and st.next_attempt_at is not None:
            return max(0.05, min(interval * 10, st.next_attempt_at - now))
        if st.next_retry_at is not None:
            return max(0.05, min(interval, st.next_retry_at - now))
        return interval

    def run(self) -> None:
        while not self._stop.is_set():
            result = self.run_once()
            self._wake.clear()
            try:
                wait = self._wait_time(result)
            except SyncConfigError:
                wait = self.interval or 60.0  # invalid sync.toml: reported by status(); keep polling
            self._wake.wait(wait)


def start_background(home: Path | None = None, config: SyncConfig | None = None) -> SyncDaemon:
    """Start draining in a daemon thread; call ``.stop()`` on the result to end it."""
    return SyncDaemon(home, config).start()
