"""The hub's transparency log over real HTTP, on SQLite and PostgreSQL.

Every answer to an upload carries an inclusion proof that checks offline with nothing but the log's
public key; tree heads only ever extend each other; two hub processes on one database never assign
one leaf index twice nor fork the log, with parallel clients on both.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from certs.errors import InconsistentTree, ProofInvalid, ProofMismatch
from certs.merkle import Frontier, leaf_hash
from certs.tlog import (
    LogKeys,
    TreeHead,
    check_consistency,
    check_inclusion,
    read_log_key,
    read_log_proof,
    read_tree_head,
)
from hub.db import LogEntry, LogQueue
from hub.service import Hub
from hub.testing import PostgresUnavailable, crash_and_restart, create_database, postgres_cluster
from tests.test_hub_support import cert_at, client_for, live_hub, put
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    Org,
    db_url,
    enrolled,
    hub,
    hub_url,
    kit,
    make_kit,
    make_org,
    org,
    pg_admin_url,
)


def log_keys(url: str) -> LogKeys:
    r = httpx.get(f"{url}/api/v1/log/key.pem")
    assert r.status_code == 200 and r.text.startswith("Tabula-Role: log\n")
    kid, key = read_log_key(r.content, "hub log key")
    return {kid: key}


def consistent(url: str, old: TreeHead, keys: LogKeys) -> TreeHead:
    """Ask the hub for a consistency proof from ``old`` to its newest head; check it; return the head."""
    doc = httpx.get(f"{url}/api/v1/log/consistency", params={"first": old.tree_size}).json()
    new = read_tree_head(doc["tree_head"], keys)
    check_consistency(old, new, [bytes.fromhex(h) for h in doc["consistency"]])
    return new


def replay_root(url: str, size: int) -> bytes:
    """What a monitor does: fetch every leaf and recompute the root."""
    f = Frontier()
    start = 0
    while start < size:
        page = httpx.get(f"{url}/api/v1/log/entries", params={"start": start}).json()["entries"]
        assert [e["leaf_index"] for e in page] == list(range(start, start + len(page)))
        for e in page:
            f.append(leaf_hash(bytes.fromhex(e["sha256"])))
        start += len(page)
    return f.root()


def test_every_upload_answer_carries_a_proof_that_verifies_offline(hub: Hub, hub_url: str, kit: Kit) -> None:
    keys = log_keys(hub_url)
    empty = read_tree_head(httpx.get(f"{hub_url}/api/v1/log/tree-head").json(), keys)
    assert empty.tree_size == 0
    heads = [empty]
    with client_for(hub_url, kit.token) as c:
        for n in range(1, 14):
            cert_id, body, digest = cert_at(kit, n, kit.previous if n > 1 else None)
            for status in (201, 200):  # a re-upload is answered with a proof too
                r = put(c, cert_id, body)
                assert r.status_code == status, r.text
                proof = read_log_proof(r.json()["log"])
                head = check_inclusion(proof, digest, keys)
                assert proof.leaf_index == n - 1 and head.tree_size >= n
            heads.append(head)
            with pytest.raises(ProofMismatch):
                check_inclusion(proof, "ab" * 32, keys)
    for old in heads:  # every tree head the hub ever handed out is a prefix of the newest
        assert consistent(hub_url, old, keys).tree_size == 13
    assert replay_root(hub_url, 13) == heads[-1].root_hash
    with hub.session() as s:
        assert s.scalar(select(func.count()).select_from(LogQueue)) == 0
        assert s.scalar(select(func.count()).select_from(LogEntry)) == 13


def test_proofs_by_id_hash_and_size(hub_url: str, kit: Kit) -> None:
    keys = log_keys(hub_url)
    digests = []
    with client_for(hub_url, kit.token) as c:
        for n in range(1, 8):
            cert_id, body, digest = cert_at(kit, n, kit.previous if n > 1 else None)
            assert put(c, cert_id, body).status_code == 201
            digests.append((cert_id, digest))
    cert_id, digest = digests[2]
    by_id = httpx.get(f"{hub_url}/api/v1/log/proof", params={"certificate_id": cert_id.upper()}).json()
    by_hash = httpx.get(f"{hub_url}/api/v1/log/proof", params={"sha256": digest}).json()
    assert by_id == by_hash and by_id["leaf_index"] == 2
    head = check_inclusion(read_log_proof(by_id), digest, keys)
    # a proof against an older tree of 5 leaves (the asker holds that tree head)
    old = httpx.get(f"{hub_url}/api/v1/log/proof", params={"sha256": digest, "tree_size": "5"}).json()
    assert old["tree_size"] == 5 and old["tree_head"] is None and old["inclusion"] != by_id["inclusion"]
    for params, code in (
        ({"sha256": digest, "tree_size": "2"}, "bad_tree_size"),  # leaf 2 is not in a tree of 2
        ({"sha256": digest, "tree_size": "99"}, "bad_tree_size"),
        ({"certificate_id": "nope"}, "bad_id"),
        ({}, "missing_query"),
    ):
        r = httpx.get(f"{hub_url}/api/v1/log/proof", params=params)
        assert r.status_code == 400 and r.json()["error"] == code, (params, r.text)
    r = httpx.get(f"{hub_url}/api/v1/log/proof", params={"sha256": "cd" * 32})
    assert r.status_code == 404
    for params in ({"first": "8"}, {"first": "3", "second": "2"}, {"first": "x"}, {}):
        assert httpx.get(f"{hub_url}/api/v1/log/consistency", params=params).status_code == 400
    mid = httpx.get(f"{hub_url}/api/v1/log/consistency", params={"first": "3", "second": "5"}).json()
    assert mid["tree_head"] is None and len(mid["consistency"]) > 0
    assert head.tree_size == 7


def test_tampered_proofs_and_rewritten_history_are_caught(hub_url: str, kit: Kit) -> None:
    keys = log_keys(hub_url)
    with client_for(hub_url, kit.token) as c:
        for n in range(1, 6):
            cert_id, body, digest = cert_at(kit, n, kit.previous if n > 1 else None)
            r = put(c, cert_id, body)
    head = check_inclusion(read_log_proof(r.json()["log"]), digest, keys)
    with pytest.raises(ProofInvalid):  # the proof of leaf 4 claimed for leaf 3
        check_inclusion(read_log_proof({**r.json()["log"], "leaf_index": 3}), digest, keys)
    # The tree of 3 as a monitor recomputes it from the leaves, and as a log that rewrote leaf 1 would
    three, rewritten = Frontier(), Frontier()
    for e in httpx.get(f"{hub_url}/api/v1/log/entries", params={"count": "3"}).json()["entries"]:
        three.append(leaf_hash(bytes.fromhex(e["sha256"])))
        rewritten.append(leaf_hash(bytes.fromhex("ee" * 32 if e["leaf_index"] == 1 else e["sha256"])))
    doc = httpx.get(f"{hub_url}/api/v1/log/consistency", params={"first": "3"}).json()
    proof = [bytes.fromhex(h) for h in doc["consistency"]]
    held = TreeHead(3, three.root(), head.timestamp, head.log_id, head.envelope)
    check_consistency(held, head, proof)
    with pytest.raises(InconsistentTree):
        check_consistency(held, head, [bytes(32), *proof[1:]])
    with pytest.raises(InconsistentTree):
        check_consistency(
            TreeHead(3, rewritten.root(), head.timestamp, head.log_id, head.envelope), head, proof
        )


# --- two hub processes, parallel clients -----------------------------------------------------------


@pytest.fixture
def two_hubs(db_url: str, hub: Hub, kit: Kit) -> Iterator[tuple[str, str]]:
    with live_hub(db_url) as a, live_hub(db_url) as b:
        yield a, b


def _upload_chain(urls: tuple[str, str], k: Kit, chain: list[tuple[str, bytes, str]], out: list[Any]) -> None:
    clients = [client_for(u, k.token) for u in urls]
    try:
        for i, (cid, body, digest) in enumerate(chain):
            r = put(clients[i % 2], cid, body)  # alternate between the two hub processes
            assert r.status_code == 201, r.text
            out.append((digest, r.json()["log"]))
    finally:
        for c in clients:
            c.close()


def test_two_hub_processes_never_assign_a_leaf_twice_nor_fork_the_log(
    two_hubs: tuple[str, str], hub: Hub, kit: Kit, org: Org, tmp_path: Path
) -> None:
    kits = [kit] + [enrolled(hub, org, make_kit(tmp_path / "more", org, f"par-{i}")) for i in range(5)]
    chains = [[cert_at(k, n, k.previous if n > 1 else None) for n in range(1, 26)] for k in kits]
    answers: list[Any] = []
    threads = [
        threading.Thread(target=_upload_chain, args=(two_hubs, k, ch, answers))
        for k, ch in zip(kits, chains, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    total = sum(len(ch) for ch in chains)
    assert len(answers) == total
    keys = log_keys(two_hubs[0])
    assert log_keys(two_hubs[1]) == keys  # one key, whatever process answers
    heads: dict[int, TreeHead] = {}
    indexes = set()
    for digest, doc in answers:
        proof = read_log_proof(doc)
        head = check_inclusion(proof, digest, keys)
        assert heads.setdefault(head.tree_size, head).root_hash == head.root_hash  # one tree per size
        indexes.add(proof.leaf_index)
    assert indexes == set(range(total))  # every certificate once, no index twice
    final = read_tree_head(httpx.get(f"{two_hubs[1]}/api/v1/log/tree-head").json(), keys)
    assert final.tree_size == total
    for head in heads.values():
        newest = consistent(two_hubs[head.tree_size % 2], head, keys)
        assert (newest.tree_size, newest.root_hash) == (total, final.root_hash)
    assert replay_root(two_hubs[0], total) == final.root_hash


def _keep_uploading(
    url: str,
    k: Kit,
    chain: list[tuple[str, bytes, str]],
    acks: list[Any],
    retries: list[int],
    failures: list[BaseException],
) -> None:
    """Upload a chain in order as station sync would: a failure (the database is down) is retried.
    Anything else ends the thread with its exception in ``failures`` (a dead thread must fail the test,
    not leave it waiting for acknowledgements that will never come)."""
    try:
        _retry_chain(url, k, chain, acks, retries)
    except BaseException as e:  # noqa: BLE001 - handed to the test's thread, which raises it
        failures.append(e)


def _wait_for(acks: list[Any], count: int, failures: list[BaseException], deadline: float) -> None:
    while len(acks) < count:
        if failures:
            raise failures[0]
        assert time.monotonic() < deadline, f"only {len(acks)} of {count} certificates acknowledged"
        time.sleep(0.01)


def _retry_chain(
    url: str, k: Kit, chain: list[tuple[str, bytes, str]], acks: list[Any], retries: list[int]
) -> None:
    with client_for(url, k.token) as c:
        for cid, body, digest in chain:
            while True:
                try:
                    r = put(c, cid, body)
                except httpx.TransportError:
                    r = None
                if r is not None and r.status_code in (200, 201):
                    acks.append((cid, digest, r.json()["log"]))
                    break
                assert r is None or r.status_code == 503, r.text
                retries.append(1)
                time.sleep(0.2)


def test_a_database_crash_loses_no_acknowledged_certificate_and_forks_nothing(tmp_path: Path) -> None:
    """PostgreSQL stopped as a crash would, twice, while four stations upload: every certificate
    the hub acknowledged is stored and in the log, every tree head it gave extends the last one."""
    try:
        cluster = postgres_cluster()
        admin = cluster.__enter__()
    except PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL unavailable: {e.message}")
    try:
        db = create_database(admin, "crash")
        hub = Hub(db)
        org = make_org(tmp_path, "Crash Org")
        hub.add_organisation(org.key.name, org.pem)
        kits = [enrolled(hub, org, make_kit(tmp_path, org, f"c-{i}")) for i in range(4)]
        chains = [[cert_at(k, n, k.previous if n > 1 else None) for n in range(1, 41)] for k in kits]
        acks: list[Any] = []
        retries: list[int] = []
        failures: list[BaseException] = []
        deadline = time.monotonic() + 600
        with live_hub(db) as url:
            threads = [
                threading.Thread(target=_keep_uploading, args=(url, k, ch, acks, retries, failures))
                for k, ch in zip(kits, chains, strict=True)
            ]
            for t in threads:
                t.start()
            for threshold in (50, 110):
                _wait_for(acks, threshold, failures, deadline)
                crash_and_restart(admin)
            _wait_for(acks, 160, failures, deadline)
            for t in threads:
                t.join(60)
            keys = log_keys(url)
            final = read_tree_head(httpx.get(f"{url}/api/v1/log/tree-head").json(), keys)
            heads = {}
            for _, digest, doc in acks:
                head = check_inclusion(read_log_proof(doc), digest, keys)
                heads[head.tree_size] = head
            for head in heads.values():
                newest = consistent(url, head, keys)
                assert (newest.tree_size, newest.root_hash) == (final.tree_size, final.root_hash)
            assert replay_root(url, final.tree_size) == final.root_hash
        hub.engine.dispose()  # its connections died with the server
        assert len(acks) == 160 and hub.count() == 160 and final.tree_size == 160 and retries
        with hub.session() as s:
            assert s.scalar(select(func.count()).select_from(LogEntry)) == 160
        hub.engine.dispose()
    finally:
        cluster.__exit__(None, None, None)
