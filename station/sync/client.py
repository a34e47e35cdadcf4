"""Drain the outbox to the hub: idempotent uploads, exponential backoff with jitter, status.

Each queued document is uploaded with ``PUT /api/v1/certificates/{id}`` (or ``/api/v1/reports/{id}``)
carrying the exact bytes that were queued and the station's bearer token.  The id is the
idempotency key: the hub answers 201 the first time, 200 for a byte-identical re-upload and 409 for
different bytes under the same id.  So a response lost after the hub stored the certificate, or a
drainer killed before it recorded the answer, only causes a harmless re-upload.

What an answer means here:

* 200 / 201: *sent* (recorded in the outbox);
* 400, 403, 409, 413, 415, 422 and other 4xx: the hub refused this document for good: *rejected*,
  with the hub's reason, visible in ``station sync --status`` (``--requeue`` retries them);
* 401 (bad token) and 404 (wrong URL): a configuration problem; the pass stops;
* 408, 425, 429, 5xx, timeouts and network errors: transient; the pass stops and the next one
  waits an exponential delay with jitter (``Retry-After`` is honoured).

Nothing here is called on the erase path: erasing only queues (see :mod:`station.sync.outbox`).
"""

from __future__ import annotations

import fcntl
import os
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from host.errors import TabulaError
from station.sync.config import SyncConfig, load_config
from station.sync.errors import SyncConfigError
from station.sync.outbox import Item, Outbox, db_path, outbox_dir, reconcile

USER_AGENT = "tabula-station-sync/1"
Verdict = Literal["sent", "rejected", "retry", "stop"]
_REJECT_CODES = {400, 403, 409, 410, 411, 413, 414, 415, 422}
_RETRY_CODES = {408, 425, 429}


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random."""

    base: float = 2.0
    cap: float = 600.0
    factor: float = 2.0

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        if failures <= 0:
            return 0.0
        d = min(self.cap, self.base * self.factor ** (failures - 1))
        return d / 2 + rng() * d / 2


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    message: str
    retry_after: float | None = None


@dataclass
class DrainResult:
    sent: int = 0
    rejected: int = 0
    pending: int = 0
    queued_from_disk: int = 0
    error: str | None = None
    busy: bool = False  # another drainer holds the lock
    deferred: bool = False  # backoff not over yet (background drains only)

    @property
    def complete(self) -> bool:
        return self.error is None and not self.busy and not self.deferred and self.pending == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"complete": self.complete}


@dataclass
class SyncStatus:
    """What the TUI and ``station sync --status`` show."""

    pending: int = 0
    sent: int = 0
    rejected: int = 0
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    next_attempt_at: float | None = None
    url: str = ""
    rejected_items: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def status(home: Path | None = None) -> SyncStatus:
    """The outbox's state, read-only and without network (cheap enough for a TUI timer)."""
    try:
        url = load_config(home).url
    except SyncConfigError as e:
        url = f"(invalid sync.toml: {e.message})"
    if not db_path(home).exists():
        return SyncStatus(url=url)
    with Outbox(home, create=False) as box:
        counts = box.counts()
        meta = box.meta()
        rejected = [{"kind": k, "id": i, "error": e} for k, i, e in box.rejected()]

    def num(key: str) -> float | None:
        return float(meta[key]) if key in meta else None

    return SyncStatus(
        pending=counts["pending"],
        sent=counts["sent"],
        rejected=counts["rejected"],
        last_success_at=num("last_success_at"),
        last_attempt_at=num("last_attempt_at"),
        last_error=meta.get("last_error"),
        last_error_at=num("last_error_at"),
        consecutive_failures=int(meta.get("consecutive_failures", "0")),
        next_attempt_at=num("next_attempt_at"),
        url=url,
        rejected_items=rejected,
    )


def _ssl_verify(config: SyncConfig) -> ssl.SSLContext | bool:
    if config.ca_bundle is None:
        return True
    if not config.ca_bundle.is_file():
        raise SyncConfigError(f"the CA bundle {config.ca_bundle} does not exist")
    try:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    except (ssl.SSLError, OSError) as e:
        raise SyncConfigError(f"the CA bundle {config.ca_bundle} is not usable: {e}") from e


def _hub_reason(response: httpx.Response) -> str:
    """The hub's JSON error (``{"error": code, "message": ...}``), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and "error" in body:
        return f"HTTP {response.status_code} {body.get('error')}: {body.get('message', '')}"
    return f"HTTP {response.status_code}: {str(body)[:200]}"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(3600.0, float(value)))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class SyncClient:
    """One HTTP connection pool to the hub, authenticated with the station's token."""

    def __init__(self, config: SyncConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        token = config.token()
        self._http = httpx.Client(
            base_url=config.base_url(),
            verify=_ssl_verify(config),
            timeout=httpx.Timeout(config.timeout),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upload(self, item: Item) -> Answer:
        path = f"/api/v1/{'certificates' if item.kind == 'certificate' else 'reports'}/{item.doc_id}"
        try:
            r = self._http.put(path, content=item.body, headers={"Content-Type": "application/json"})
        except httpx.TimeoutException as e:
            return Answer("retry", f"timeout talking to the hub ({type(e).__name__})")
        except httpx.TransportError as e:
            return Answer("retry", f"network error: {type(e).__name__}: {e}")
        code = r.status_code
        if code in (200, 201):
            return Answer("sent", f"HTTP {code}")
        if code == 401:
            return Answer("stop", _hub_reason(r) + " (is the station token right?)")
        if code == 404:
            return Answer("stop", _hub_reason(r) + " (is the hub URL right?)")
        if code in _RETRY_CODES or code >= 500:
            return Answer("retry", _hub_reason(r), _retry_after(r))
        if code in _REJECT_CODES or 400 <= code < 500:
            return Answer("rejected", _hub_reason(r))
        return Answer("retry", f"unexpected answer: HTTP {code}")


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
    batch: int = 50,
    retries: int = 0,
    backoff: Backoff = Backoff(),
    respect_backoff: bool = False,
    wait_for_lock: bool = False,
    stop: threading.Event | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    """Upload every pending document now (oldest first); returns what happened.

    ``retries`` transient failures of one document are retried within this call (after a backoff
    delay) before the pass gives up; the outbox keeps the rest for the next pass.  Background
    drains pass ``respect_backoff=True`` so a down hub is not hammered.
    """
    config = config if config is not None else load_config(home)
    result = DrainResult()
    lock = _DrainLock(home)
    try:
        if not lock.acquire(wait_for_lock):
            result.busy = True
            return result
        result.queued_from_disk = reconcile(home)
        with Outbox(home) as box:
            meta = box.meta()
            failures = int(meta.get("consecutive_failures", "0"))
            not_before = float(meta.get("next_attempt_at", "0"))
            if respect_backoff and time.time() < not_before:
                result.deferred = True
                result.pending = box.counts()["pending"]
                return result
            try:
                client = SyncClient(config, transport=transport)
            except SyncConfigError as e:
                result.error = e.message
                _record_failure(box, failures + 1, e.message, backoff, None, [], [], [])
                result.pending = box.counts()["pending"]
                return result
            with client:
                _drain_loop(box, client, result, batch, retries, backoff, failures, stop, sleep)
            result.pending = box.counts()["pending"]
    finally:
        lock.close()
    return result


def _record_failure(
    box: Outbox,
    failures: int,
    message: str,
    backoff: Backoff,
    retry_after: float | None,
    sent: list[int],
    rejected: list[tuple[int, str]],
    retry: list[tuple[int, str]],
) -> None:
    now = time.time()
    wait = max(backoff.delay(failures), retry_after or 0.0)
    box.settle(
        sent,
        rejected,
        retry,
        {
            "last_attempt_at": repr(now),
            "last_error": message,
            "last_error_at": repr(now),
            "consecutive_failures": str(failures),
            "next_attempt_at": repr(now + wait),
        }
        | ({"last_success_at": repr(now)} if sent else {}),
    )


def _drain_loop(
    box: Outbox,
    client: SyncClient,
    result: DrainResult,
    batch: int,
    retries: int,
    backoff: Backoff,
    failures: int,
    stop: threading.Event | None,
    sleep: Callable[[float], None],
) -> None:
    after = 0
    while stop is None or not stop.is_set():
        items = box.due(batch, after)
        if not items:
            break
        sent: list[int] = []
        rejected: list[tuple[int, str]] = []
        for item in items:
            tries = 0
            while True:
                answer = client.upload(item)
                if answer.verdict != "retry" or tries >= retries or (stop is not None and stop.is_set()):
                    break
                tries += 1
                sleep(max(backoff.delay(tries), answer.retry_after or 0.0))
            if answer.verdict == "sent":
                sent.append(item.seq)
            elif answer.verdict == "rejected":
                rejected.append((item.seq, answer.message))
            else:
                # Transient trouble or a configuration problem: keep what we learned, stop this pass.
                result.sent += len(sent)
                result.rejected += len(rejected)
                result.error = f"{item.kind} {item.doc_id}: {answer.message}"
                _record_failure(
                    box,
                    failures + 1,
                    result.error,
                    backoff,
                    answer.retry_after,
                    sent,
                    rejected,
                    [(item.seq, answer.message)],
                )
                return
            after = item.seq
            if stop is not None and stop.is_set():
                break
        now = repr(time.time())
        box.settle(
            sent,
            rejected,
            [],
            {
                "last_attempt_at": now,
                "last_success_at": now,
                "consecutive_failures": "0",
                "next_attempt_at": None,
                "last_error": None,
                "last_error_at": None,
            },
        )
        result.sent += len(sent)
        result.rejected += len(rejected)


class SyncDaemon:
    """Drains the outbox periodically in a background thread (TUI, autorun) or in the foreground.

    ``wake()`` triggers a drain now (e.g. right after a certificate was issued); failures wait an
    exponential, jittered delay.  Errors are recorded in the outbox (see :func:`status`), never lost.
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
            result = drain(
                self.home,
                config,
                backoff=self.backoff,
                respect_backoff=True,
                stop=self._stop,
            )
        except TabulaError as e:
            # An outbox or configuration problem: visible through status(), retried next time.
            result = DrainResult(error=e.message)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def _wait_time(self, result: DrainResult) -> float:
        config = self.config if self.config is not None else load_config(self.home)
        interval = self.interval if self.interval is not None else config.interval
        if result.error is not None or result.deferred:
            st = status(self.home)
            if st.next_attempt_at is not None:
                return max(0.05, min(interval * 10, st.next_attempt_at - time.time()))
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
