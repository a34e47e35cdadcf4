"""`station sync` sends certificates in batches to a hub that takes them, one by one to one that
does not, and keeps every per-document guarantee: each answer recorded durably, one bad certificate
never delays the others, faults of whole requests (503, 500 after storing, late or lost answers)
still end with each certificate stored exactly once.  Real hub on loopback, SQLite and PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from hub.app import create_app
from hub.service import Hub
from hub.testing import serve_in_thread
from station.sync import status
from station.sync.drain import drain
from station.sync.outbox import Outbox
from tests.test_sync_client import DropProxy, Faults, assert_exactly_once, drain_until_done, queue
from tests.test_sync_support import Kit, db_url, hub, kit, org, pg_admin_url  # noqa: F401

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


class Counting:
    """ASGI layer counting requests by (method, path kind), and rewriting chosen batch items."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests: list[tuple[str, int]] = []  # (method, certificates in it)
        self.spoil: set[str] = set()  # certificate ids whose bytes are corrupted on the way in a batch

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("PUT", "POST"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if scope["method"] == "POST" and scope["path"].endswith(":batch"):
            doc = json.loads(body)
            self.requests.append(("POST", len(doc["certificates"])))
            for item in doc["certificates"]:
                if item["certificate_id"] in self.spoil:
                    item["body"] = base64.b64encode(b'{"payload": "x"}').decode()
            body = json.dumps(doc).encode()
        elif scope["method"] == "PUT":
            self.requests.append(("PUT", 1))
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = dict(scope, headers=[*headers, (b"content-length", str(len(body)).encode())])
        sent = [False]

        async def replay() -> Any:
            if sent[0]:
                return {"type": "http.disconnect"}
            sent[0] = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture
def counted(hub: Hub) -> Iterator[tuple[Counting, str]]:
    layer = Counting(create_app(hub))
    with serve_in_thread(layer) as url:
        yield layer, url


def test_certificates_go_in_batches_with_their_proofs(
    hub: Hub, kit: Kit, counted: tuple[Counting, str]
) -> None:
    layer, url = counted
    ids = queue(kit, 120)
    result = drain(kit.home, kit.config(url))
    assert result.complete and result.sent == 120 and result.log_error is None
    assert layer.requests == [("POST", 50), ("POST", 50), ("POST", 20)]
    assert result.proofs_kept == 120  # every answer's inclusion proof checked and kept
    with Outbox(kit.home) as box:
        assert all(box.proof_of(cid) is not None for cid in ids)
    assert all((kit.cert_dir / f"{cid}.log.json").is_file() for cid in ids)
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_a_bad_certificate_in_a_batch_is_rejected_alone(
    hub: Hub, kit: Kit, counted: tuple[Counting, str]
) -> None:
    layer, url = counted
    ids = queue(kit, 10)
    layer.spoil.add(ids[4])
    result = drain(kit.home, kit.config(url))
    assert (result.sent, result.rejected, result.failed, result.pending) == (9, 1, 0, 0)
    assert layer.requests == [("POST", 10)]
    st = status(kit.home)
    [why] = st.rejected_items
    assert why["id"] == ids[4] and why["code"] == "malformed"
    assert hub.count() == 9
    # After a fix (here: no more corruption on the way), --requeue sends it again.
    layer.spoil.clear()
    with Outbox(kit.home) as box:
        assert box.requeue(ids[4]) == 1
    assert drain(kit.home, kit.config(url)).complete
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_an_older_hub_gets_them_one_by_one(hub: Hub, kit: Kit) -> None:
    faults = Faults(create_app(hub))  # no batch route: 404, as a hub before batches
    with serve_in_thread(faults) as url:
        ids = queue(kit, 7)
        result = drain(kit.home, kit.config(url))
        assert result.complete and result.sent == 7
        assert faults.answers == [201] * 7  # each by its own PUT
    assert_exactly_once(hub, ids, kit)


@sqlite_only
def test_batch_one_means_one_by_one(hub: Hub, kit: Kit, counted: tuple[Counting, str]) -> None:
    layer, url = counted
    ids = queue(kit, 3)
    assert drain(kit.home, kit.config(url, batch=1)).complete
    assert layer.requests == [("PUT", 1)] * 3
    assert_exactly_once(hub, ids, kit)


def test_faults_of_whole_batches_still_store_each_certificate_once(hub: Hub, kit: Kit) -> None:
    """503 before the hub, 500 after it stored the batch, an answer too late, a connection dropped
    with the answer: every certificate ends stored once, and the outbox says all sent."""
    faults = Faults(create_app(hub), batches=True)
    with serve_in_thread(faults) as hub_url:
        proxy = DropProxy(int(hub_url.rsplit(":", 1)[1]))
        config = kit.config(f"http://127.0.0.1:{proxy.port}", timeout=0.5, batch=10)
        ids = queue(kit, 60)
        faults.fail_before = 2
        faults.error_after = 1
        faults.delay_after = 1
        faults.delay = 1.0
        proxy.drop = 1
        passes = drain_until_done(kit, config)
        assert passes > 1 and proxy.dropped == 1
        assert faults.answers.count(200) >= 10  # a batch stored whose answer was lost, sent again: 200s
    assert_exactly_once(hub, ids, kit)
    assert status(kit.home).retrying == 0
