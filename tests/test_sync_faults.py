"""One bad certificate never delays the others: the real hub on loopback behind a thin ASGI layer that
answers for chosen certificate ids (503 for ever, 422, 429, 409 naming the certificate itself,
redirects, a revoked station) while every other upload reaches the hub.  SQLite and PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.service import Hub
from hub.testing import serve_in_thread
from station.sync import status
from station.sync.cli import register
from station.sync.drain import Backoff, SyncDaemon, drain
from station.sync.errors import UnknownDocument
from tests.test_sync_client import assert_exactly_once, queue
from tests.test_sync_support import Kit, db_url, hub, kit, org, pg_admin_url  # noqa: F401

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass(frozen=True)
class Canned:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[bytes, bytes], ...] = ()


Rule = Callable[[str], Canned | None]  # None: let the real hub answer


def always(status: int, error: str, message: str = "", retry_after: float | None = None) -> Rule:
    headers = ((b"retry-after", str(retry_after).encode()),) if retry_after is not None else ()
    return lambda doc_id: Canned(status, {"error": error, "message": message}, headers)


def first(n: int, rule: Rule) -> Rule:
    """``rule`` for the first ``n`` uploads of the document, then the real hub."""
    left = [n]

    def apply(doc_id: str) -> Canned | None:
        if left[0] <= 0:
            return None
        left[0] -= 1
        return rule(doc_id)

    return apply


class Rules:
    """ASGI layer in front of the hub: canned answers per certificate id, and a log of every PUT.

    It shows the hub as an older one, without the batch route (404), so the drain sends one document
    per request, as these tests follow (tests/test_sync_batch.py follows batches)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rules: dict[str, Rule] = {}
        self.log: list[tuple[str, int]] = []  # (document id, status) in arrival order

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith(":batch"):
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send(
                {"type": "http.response.body", "body": b'{"error": "not_found", "message": "no route"}'}
            )
            return
        if scope["type"] != "http" or scope["method"] != "PUT":
            await self.app(scope, receive, send)
            return
        doc_id = scope["path"].rsplit("/", 1)[-1]
        rule = self.rules.get(doc_id)
        canned = rule(doc_id) if rule is not None else None
        if canned is None:
            statuses: list[int] = []

            async def capture(message: Any) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])
                await send(message)

            await self.app(scope, receive, capture)
            self.log.append((doc_id, statuses[0]))
            return
        headers = [(b"content-type", b"application/json"), *canned.headers]
        await send({"type": "http.response.start", "status": canned.status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps(canned.body).encode()})
        self.log.append((doc_id, canned.status))

    def tried(self, doc_id: str) -> int:
        return sum(1 for d, _ in self.log if d == doc_id)


@pytest.fixture
def ruled(hub: Hub) -> Iterator[tuple[Rules, str]]:
    rules = Rules(create_app(hub))
    with serve_in_thread(rules) as url:
        yield rules, url


def station_sync(argv: list[str], home: Path) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sync", *argv])
    out = io.StringIO()
    return args.func(args, out=out, home=home), out.getvalue()


def test_one_bad_certificate_never_delays_the_others(hub: Hub, kit: Kit, ruled: tuple[Rules, str]) -> None:
    rules, url = ruled
    ids = queue(kit, 52)
    stuck, refused, healthy = ids[0], ids[1], ids[2:]  # the two bad ones are the oldest in the queue
    rules.rules[stuck] = always(503, "unavailable", "the database is busy", retry_after=30)
    rules.rules[refused] = always(422, "asset_too_long", "the asset number is over 200 characters")
    config = kit.config(url)
    before = time.time()

    result = drain(kit.home, config, respect_backoff=True)  # what the background daemon runs
    assert (result.sent, result.rejected, result.failed, result.pending) == (50, 1, 1, 1)
    assert result.error is None  # one document's trouble is not the hub's
    assert rules.log[:2] == [(stuck, 503), (refused, 422)] and [d for d, _ in rules.log[2:]] == healthy
    assert hub.count() == 50
    st = status(kit.home)
    assert (st.pending, st.retrying, st.rejected, st.sent, st.last_error) == (1, 1, 1, 50, None)
    [why] = st.rejected_items
    assert (why["id"], why["code"]) == (refused, "asset_too_long") and "over 200 characters" in why["error"]
    [waiting] = st.retrying_items
    assert waiting["id"] == stuck and waiting["failures"] == 1 and "HTTP 503" in waiting["error"]
    assert waiting["at"] >= before + 30  # the hub's Retry-After, honoured for this document alone

    # Later background passes leave the stuck one alone until its Retry-After, and new ones flow.
    more = queue(kit, 3)
    result = drain(kit.home, config, respect_backoff=True)
    assert result.sent == 3 and [d for d, _ in rules.log[52:]] == more and rules.tried(stuck) == 1

    # Listed with the hub's reason, for a person (and as JSON).
    code, out = station_sync(["--url", url, "--save", "--status"], kit.home)  # saves, sends nothing
    assert code == 0 and f"certificate {refused}" in out and "asset_too_long" in out
    assert f"certificate {stuck}: 1 failure(s)" in out and "(1 waiting to retry)" in out
    code, out = station_sync(["--status", "--json"], kit.home)
    assert json.loads(out)["rejected_items"][0]["code"] == "asset_too_long"

    # The hub recovers: --requeue resets the backoff and sends now; the refused one stays refused.
    del rules.rules[stuck]
    code, out = station_sync(["--requeue", stuck], kit.home)
    assert code == 0 and f"requeued {stuck}" in out and "sent 1" in out and "1 document(s) refused" in out
    # After a fix on the hub, the refused one is sent again.
    del rules.rules[refused]
    code, out = station_sync(["--requeue-all"], kit.home)
    assert code == 0 and "requeued 1 document(s)" in out and "sent 1" in out
    assert_exactly_once(hub, ids + more, kit)


@sqlite_only
def test_requeue_names_a_document_or_refuses(hub: Hub, kit: Kit, ruled: tuple[Rules, str]) -> None:
    rules, url = ruled
    a, b = queue(kit, 2)
    kit.config(url)  # writes the token where sync.toml's default token_file points
    code, out = station_sync(["--url", url, "--save"], kit.home)
    assert code == 0 and "sent 2" in out
    code, out = station_sync(["--requeue", a], kit.home)
    assert code == 0 and f"{a} was already delivered" in out
    with pytest.raises(UnknownDocument, match="no document nope in the outbox"):
        station_sync(["--requeue", "nope"], kit.home)
    code, out = station_sync(["--requeue", "--status"], kit.home)  # bare: every refused one (none here)
    assert code == 0 and "requeued 0 document(s)" in out and "pending:        0" in out
    assert len(rules.log) == 2
    assert_exactly_once(hub, [a, b], kit)


@sqlite_only
def test_failures_in_a_row_halt_the_pass_and_failing_documents_go_last(
    hub: Hub, kit: Kit, ruled: tuple[Rules, str]
) -> None:
    rules, url = ruled
    ids = queue(kit, 8)
    for doc_id in ids:
        rules.rules[doc_id] = always(500, "internal")
    config = kit.config(url)
    result = drain(kit.home, config, respect_backoff=True, halt_after=5)
    assert result.failed == 5 and result.error is not None and "5 documents in a row failed" in result.error
    assert len(rules.log) == 5  # the hub is failing everything: the pass stopped hammering it
    st = status(kit.home)
    assert (
        st.consecutive_failures == 1 and st.next_attempt_at is not None and st.next_attempt_at > time.time()
    )
    assert drain(kit.home, config, respect_backoff=True).deferred  # the outbox-wide backoff
    rules.rules.clear()
    result = drain(kit.home, config)  # `station sync`: now, every document
    # The three never tried go first, the five that failed last.
    assert [d for d, _ in rules.log[5:]] == ids[5:] + ids[:5]
    assert result.complete and status(kit.home).last_error is None
    assert_exactly_once(hub, ids, kit)


def _names_itself(doc_id: str) -> Canned:
    # What an older hub answered to one of several identical uploads racing each other.
    message = f"sequence 1 of this station is already taken by certificate {doc_id}"
    return Canned(409, {"error": "chain_duplicate", "message": message})


@sqlite_only
def test_an_answer_saying_it_is_stored_is_sent_never_rejected(
    hub: Hub, kit: Kit, ruled: tuple[Rules, str]
) -> None:
    rules, url = ruled
    racing, stored, said, conflict = queue(kit, 4)
    rules.rules[racing] = first(1, _names_itself)  # the race is over when asked again: 201
    rules.rules[said] = lambda doc_id: Canned(409, {"status": "already_stored"})
    # Stored earlier by the hub, which keeps answering the 409 of the race: still "sent".
    body = (kit.cert_dir / f"{stored}.json").read_bytes()
    auth = {"Authorization": f"Bearer {kit.token}"}
    assert httpx.put(f"{url}/api/v1/certificates/{stored}", content=body, headers=auth).status_code == 201
    rules.rules[stored] = _names_itself
    # Different bytes under this id: the hub names the certificate too, but that is a real conflict.
    rules.rules[conflict] = always(409, "id_conflict", f"certificate {conflict} is stored with other content")
    result = drain(kit.home, kit.config(url))
    assert (result.sent, result.rejected) == (3, 1)
    assert [s for d, s in rules.log if d == racing] == [409, 201]
    assert [s for d, s in rules.log if d == stored] == [201, 409, 409]  # ours, then the drain's two
    st = status(kit.home)
    assert [r["id"] for r in st.rejected_items] == [conflict] and st.rejected_items[0][
        "code"
    ] == "id_conflict"


@sqlite_only
def test_429_halts_the_pass_without_blaming_the_document(
    hub: Hub, kit: Kit, ruled: tuple[Rules, str]
) -> None:
    rules, url = ruled
    ids = queue(kit, 3)
    rules.rules[ids[0]] = first(1, always(429, "rate_limited", "slow down", retry_after=7))
    config = kit.config(url)
    before = time.time()
    result = drain(kit.home, config, respect_backoff=True)
    assert result.error is not None and "429" in result.error and result.failed == 0 and len(rules.log) == 1
    st = status(kit.home)
    assert st.retrying == 0 and st.next_attempt_at is not None and st.next_attempt_at >= before + 7
    assert drain(kit.home, config, respect_backoff=True).deferred
    assert drain(kit.home, config).complete  # `station sync`, run by a person, tries now
    # A rate-limited hub (every third upload: 429, Retry-After 0.1 s): `station sync` waits it out
    # and goes on; a 429 again right after the wait halts the pass.
    more = queue(kit, 6)
    for doc_id in more[::3]:
        rules.rules[doc_id] = first(1, always(429, "rate_limited", retry_after=0.1))
    sleeps: list[float] = []
    result = drain(kit.home, config, retries=2, backoff=Backoff(base=0.5, cap=5.0), sleep=sleeps.append)
    assert result.complete and result.sent == 6 and sleeps == [0.1, 0.1]
    [last] = queue(kit, 1)
    rules.rules[last] = always(429, "rate_limited", retry_after=0.1)
    result = drain(kit.home, config, retries=2, backoff=Backoff(base=0.5, cap=5.0), sleep=sleeps.append)
    assert result.error is not None and "429" in result.error and len(sleeps) == 3 and result.pending == 1
    del rules.rules[last]
    assert drain(kit.home, config).complete
    assert_exactly_once(hub, ids + more + [last], kit)


@sqlite_only
@pytest.mark.parametrize(
    ("canned", "said"),
    [
        (Canned(403, {"error": "station_revoked", "message": "this station has been revoked"}), "revoked"),
        (Canned(301, {}, ((b"location", b"https://hub.example.org/api/v1/x"),)), "redirects to https://"),
    ],
)
def test_a_revoked_station_or_a_redirect_halts_and_refuses_nothing(
    hub: Hub, kit: Kit, ruled: tuple[Rules, str], canned: Canned, said: str
) -> None:
    rules, url = ruled
    ids = queue(kit, 3)
    rules.rules[ids[0]] = lambda doc_id: canned
    result = drain(kit.home, kit.config(url))
    assert result.error is not None and said in result.error
    assert (result.sent, result.rejected, result.failed, len(rules.log)) == (0, 0, 0, 1)
    assert status(kit.home).pending == 3


@sqlite_only
def test_the_daemon_wakes_when_a_documents_backoff_ends(hub: Hub, kit: Kit, ruled: tuple[Rules, str]) -> None:
    rules, url = ruled
    ids = queue(kit, 4)
    rules.rules[ids[1]] = first(2, always(503, "unavailable", retry_after=0.2))
    # A long interval: only the document's own backoff can bring the daemon back in time.
    daemon = SyncDaemon(kit.home, kit.config(url), interval=3600, backoff=Backoff(base=0.1, cap=0.3)).start()
    try:
        deadline = time.monotonic() + 30
        while status(kit.home).pending:
            assert time.monotonic() < deadline, status(kit.home)
            time.sleep(0.05)
    finally:
        daemon.stop()
    assert [s for d, s in rules.log if d == ids[1]] == [503, 503, 201]
    assert_exactly_once(hub, ids, kit)
