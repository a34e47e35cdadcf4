"""Batch uploads (``POST /api/v1/certificates:batch``) against a real hub process, SQLite and PostgreSQL;
and the verdict ingest reaches serving the lookups (verification done once).

Every item must get the answer the same single uploads, in the same order, would have had; the
chain guarantees of single uploads (one certificate per place, no fork, byte-identical re-uploads
200) must hold under concurrency between batches and single uploads.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from certs.tlog import check_inclusion, read_log_proof
from hub.batch import MAX_ITEMS
from hub.db import CertificateRow
from hub.service import Hub, summary
from tests.test_hub_log import log_keys
from tests.test_hub_support import at_once, cert_at, client_for, fake_hash, live_hub, put
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    Org,
    db_url,
    enrolled,
    hub,
    kit,
    make_kit,
    make_org,
    org,
    pg_admin_url,
)

BATCH = "/api/v1/certificates:batch"
Item = tuple[str, bytes, str]


@pytest.fixture
def live(db_url: str, hub: Hub, kit: Kit) -> Iterator[str]:
    with live_hub(db_url) as url:
        yield url


def send(client: httpx.Client, items: list[Item] | list[tuple[str, bytes]]) -> httpx.Response:
    doc = {"certificates": [{"certificate_id": i[0], "body": base64.b64encode(i[1]).decode()} for i in items]}
    return client.post(BATCH, content=json.dumps(doc))


def statuses(r: httpx.Response) -> list[tuple[int, str]]:
    assert r.status_code == 200, r.text
    return [(x["http_status"], x.get("error") or x["status"]) for x in r.json()["results"]]


def chain_of(kit: Kit, n: int, start: int = 1) -> list[Item]:
    return [cert_at(kit, s, kit.previous if s > 1 else None) for s in range(start, start + n)]


def stored(hub: Hub, kid: str) -> dict[int, CertificateRow]:
    with hub.session() as s:
        rows = s.scalars(select(CertificateRow).where(CertificateRow.station_kid == kid))
        return {r.sequence: r for r in rows}


def assert_linked(hub: Hub, kid: str, n: int) -> None:
    rows = stored(hub, kid)
    assert sorted(rows) == list(range(1, n + 1))
    for s in range(2, n + 1):
        assert rows[s].previous == rows[s - 1].digest


def test_a_batch_stores_a_chain_with_proofs_and_again_is_200(live: str, hub: Hub, kit: Kit) -> None:
    chain = chain_of(kit, 40)
    with client_for(live, kit.token) as c:
        r = send(c, chain)
        assert statuses(r) == [(201, "stored")] * 40
        results = r.json()["results"]
        for (cid, _, digest), res in zip(chain, results, strict=True):
            assert res["certificate_id"] == cid and res["sha256"] == digest
            proof = read_log_proof(res["log"])  # a complete inclusion proof, as a single upload's
            assert proof.certificate_id == cid
        # The same batch again, and its items one by one: already stored, never 409.
        assert statuses(send(c, chain)) == [(200, "already_stored")] * 40
        assert {put(c, cid, body).status_code for cid, body, _ in chain[:5]} == {200}
    assert_linked(hub, kit.key.kid, 40)
    with hub.session() as s:
        assert s.scalar(select(func.count()).select_from(CertificateRow)) == 40


def test_a_bad_item_in_the_middle_is_refused_alone(live: str, hub: Hub, kit: Kit) -> None:
    chain = chain_of(kit, 6)
    env = json.loads(chain[2][1])
    sig = env["signature"]
    env["signature"] = ("B" if sig[10] == "A" else "A").join((sig[:10], sig[11:]))
    bad_sig = json.dumps(env).encode()
    items: list[tuple[str, bytes]] = [(cid, body) for cid, body, _ in chain]
    items[2] = (chain[2][0], bad_sig)
    items.insert(4, ("not-a-uuid", chain[4][1]))
    items.insert(5, (chain[5][0], b"{not json"))
    with client_for(live, kit.token) as c:
        got = statuses(send(c, items))
    assert got[0] == got[1] == (201, "stored")
    assert got[2][0] == 422 and got[3] == (201, "stored")
    assert got[4] == (422, "bad_id") and got[5][0] == 422
    assert got[6:] == [(201, "stored"), (201, "stored")]
    assert sorted(stored(hub, kit.key.kid)) == [1, 2, 4, 5, 6]  # #3 is missing: a gap, as single uploads


def test_duplicates_in_one_batch_answer_as_repeated_single_uploads(live: str, hub: Hub, kit: Kit) -> None:
    chain = chain_of(kit, 3)
    other = cert_at(kit, 3, chain[1][2], serial="OTHER")  # same place as #3, different content
    same_id_other_bytes = (chain[0][0], chain[1][1])  # #2's bytes under #1's id
    items = [chain[0], chain[0], chain[1], chain[1], chain[2], other]
    with client_for(live, kit.token) as c:
        got = statuses(send(c, [*items, same_id_other_bytes]))
    assert got[:5] == [
        (201, "stored"),
        (200, "already_stored"),
        (201, "stored"),
        (200, "already_stored"),
        (201, "stored"),
    ]
    assert got[5] == (409, "chain_duplicate")
    assert got[6][0] == 422  # the signed id is not the id it is sent under
    assert_linked(hub, kit.key.kid, 3)


def test_an_item_breaking_the_chain_is_refused_and_the_rest_stored(live: str, hub: Hub, kit: Kit) -> None:
    first = chain_of(kit, 3)
    broken = cert_at(kit, 4, fake_hash("not #3"))  # does not link to #3
    fork = cert_at(kit, 5, first[1][2])  # claims #2 as predecessor: a fork of #3
    after = cert_at(kit, 6, fake_hash("#5 unknown"))
    with client_for(live, kit.token) as c:
        got = statuses(send(c, [*first, broken, fork, after]))
    assert got[:3] == [(201, "stored")] * 3
    assert got[3] == (422, "chain_break") and got[4] == (422, "chain_break")
    assert got[5] == (201, "stored")  # #5 is not stored: #6 fits (a gap), as a single upload would
    assert sorted(stored(hub, kit.key.kid)) == [1, 2, 3, 6]


def test_over_size_and_hostile_batches_are_refused_whole(live: str, hub: Hub, kit: Kit) -> None:
    one = cert_at(kit, 1, None)
    hostile: list[tuple[bytes, int, str]] = [
        (b"", 400, "malformed_batch"),
        (b"[]", 400, "malformed_batch"),
        (b'{"certificates": []}', 400, "malformed_batch"),
        (b'{"certificates": {"a": 1}}', 400, "malformed_batch"),
        (b'{"certificates": [1, 2]}', 400, "malformed_batch"),
        (b'{"certificates": [{"certificate_id": 7, "body": ""}]}', 400, "malformed_batch"),
        (
            json.dumps({"certificates": [{"certificate_id": one[0], "body": "%%%"}]}).encode(),
            400,
            "malformed_batch",
        ),
        (b"[" * 200_000, 400, "malformed_batch"),
        (b'{"certificates": [' + b"9" * 5000 + b"]}", 400, "malformed_batch"),
        (b"\xff\xfe{}", 400, "malformed_batch"),
    ]
    with client_for(live, kit.token) as c:
        for body, status, code in hostile:
            r = c.post(BATCH, content=body)
            assert (r.status_code, r.json()["error"]) == (status, code), (body[:40], r.text)
        many = [one] * (MAX_ITEMS + 1)
        r = send(c, many)
        assert (r.status_code, r.json()["error"]) == (413, "batch_too_large")
        r = c.post(BATCH, content=b'{"certificates": ["' + b"A" * (9 * 1024 * 1024) + b'"]}')
        assert r.status_code == 413
        # an item over the single-upload limit is refused alone
        big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
        doc = {"certificates": [{"certificate_id": one[0], "body": big}]}
        r = c.post(BATCH, content=json.dumps(doc))
        assert statuses(r) == [(413, "payload_too_large")]
        r = c.post(BATCH, content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
    r = httpx.post(f"{live}{BATCH}", content=b'{"certificates": []}')
    assert r.status_code == 401
    assert stored(hub, kit.key.kid) == {}


def test_a_foreign_certificate_in_a_batch_is_403_for_it_alone(
    live: str, hub: Hub, kit: Kit, tmp_path: Path
) -> None:
    org2 = make_org(tmp_path / "o2", "Other Org")
    hub.add_organisation("Other Org", org2.pem)
    other = enrolled(hub, org2, make_kit(tmp_path / "o2", org2, "other-1"))
    mine = chain_of(kit, 2)
    theirs = cert_at(other, 1, None)
    with client_for(live, kit.token) as c:
        got = statuses(send(c, [mine[0], theirs, mine[1]]))
    assert got == [(201, "stored"), (403, "foreign_signature"), (201, "stored")]


def test_concurrent_batches_and_single_uploads_keep_every_chain_intact(live: str, hub: Hub, kit: Kit) -> None:
    """Six clients send overlapping batches of one chain (and single PUTs of it) at the same moment:
    every item 200/201, never 409; the chain stored once, every link intact."""
    chain = chain_of(kit, 60)
    plans: list[list[Item]] = [chain[0:30], chain[20:50], chain[40:60], chain[::-1][:30], chain[10:40], chain]
    clients = [client_for(live, kit.token) for _ in range(len(plans) + 1)]
    for c in clients:
        c.get("/healthz")
    calls = [lambda c=c, p=p: statuses(send(c, p)) for c, p in zip(clients, plans, strict=False)]
    calls.append(lambda: [(put(clients[-1], cid, b).status_code, "") for cid, b, _ in chain[25:35]])
    answers = at_once(calls)
    for c in clients:
        c.close()
    for got in answers:
        assert not isinstance(got, Exception), got
        assert {s for s, _ in got} <= {200, 201}, got
    created = sum(1 for got in answers[:-1] for s, _ in got if s == 201)
    created += sum(1 for s, _ in answers[-1] if s == 201)
    assert created == 60
    assert_linked(hub, kit.key.kid, 60)


def test_non_linking_items_in_racing_batches_store_exactly_one(live: str, hub: Hub, kit: Kit) -> None:
    """Batches racing each other with items n / n+1 that do not link: exactly one of each pair stored."""
    firsts, seconds = [], []
    for i in range(30):
        n = 10 * i + 5
        firsts.append(cert_at(kit, n, fake_hash(f"before-{i}")))
        seconds.append(cert_at(kit, n + 1, fake_hash(f"not-{i}")))
    a, b = client_for(live, kit.token), client_for(live, kit.token)
    a.get("/healthz"), b.get("/healthz")
    ra, rb = at_once([lambda: statuses(send(a, firsts)), lambda: statuses(send(b, seconds))])
    a.close(), b.close()
    rows = stored(hub, kit.key.kid)
    for i, (x, y) in enumerate(zip(ra, rb, strict=True)):
        assert sorted((x[0], y[0])) == [201, 422], (x, y)
        n = 10 * i + 5
        assert (n in rows) != (n + 1 in rows)


def test_two_hub_processes_take_batches_without_a_leaf_twice_or_a_broken_chain(
    db_url: str, hub: Hub, kit: Kit, org: Org, tmp_path: Path
) -> None:
    """Six stations send their chains in batches of 7, alternating between two hub processes on one
    database: every proof verifies offline against one log, no leaf twice, every chain intact."""
    kits = [kit] + [enrolled(hub, org, make_kit(tmp_path / "more", org, f"par-{i}")) for i in range(5)]
    chains = [chain_of(k, 35) for k in kits]
    answers: list[Any] = []
    with live_hub(db_url) as a, live_hub(db_url) as b:

        def upload(k: Kit, chain: list[Item]) -> None:
            clients = [client_for(u, k.token) for u in (a, b)]
            for n, start in enumerate(range(0, len(chain), 7)):
                part = chain[start : start + 7]
                r = send(clients[n % 2], part)
                assert statuses(r) == [(201, "stored")] * len(part)
                answers.extend((d, x["log"]) for (_, _, d), x in zip(part, r.json()["results"], strict=True))
            for c in clients:
                c.close()

        results = at_once([lambda k=k, ch=ch: upload(k, ch) for k, ch in zip(kits, chains, strict=True)])
        assert not any(isinstance(x, Exception) for x in results), results
        keys = log_keys(a)
    total = sum(len(ch) for ch in chains)
    assert len(answers) == total
    heads: dict[int, Any] = {}
    indexes = set()
    for digest, doc in answers:
        proof = read_log_proof(doc)
        head = check_inclusion(proof, digest, keys)
        assert heads.setdefault(head.tree_size, head).root_hash == head.root_hash  # one tree per size
        indexes.add(proof.leaf_index)
    assert indexes == set(range(total))
    for k in kits:
        assert_linked(hub, k.key.kid, 35)


# --- verification done once: ingest's verdict serves the lookups ----------------------------------


def test_the_verdict_of_ingest_is_the_lookups_and_changed_bytes_are_verified_again(
    hub: Hub, kit: Kit
) -> None:
    station = hub.authenticate(f"Bearer {kit.token}")
    cid, body, _ = cert_at(kit, 1, None)
    failure = kit.certificate(success=False)
    failure_body = kit.sign(failure)
    hub.ingest_certificate(station, cid, body)
    hub.ingest_certificate(station, failure.certificate_id, failure_body)
    fresh = Hub(hub.engine, create=False)  # a process that never saw the uploads verifies from scratch
    for c in (cid, failure.certificate_id):
        assert summary(hub.find(c)) == summary(fresh.find(c))
    assert summary(hub.find(cid))["verified"] and not summary(hub.find(failure.certificate_id))["verified"]
    # Bytes changed in the database behind the hub's back (the stored hash column left alone):
    # the remembered verdict does not cover them; the lookup verifies them and says so.
    env = json.loads(body)
    env["signature"] = env["signature"][:-4] + ("AAAA" if not env["signature"].endswith("AAAA") else "BBBB")
    with hub.session() as s, s.begin():
        s.execute(
            update(CertificateRow)
            .where(CertificateRow.certificate_id == cid)
            .values(body=json.dumps(env).encode())
        )
    found = summary(hub.find(cid))
    assert not found["verified"] and not found["authentic"]


def test_the_rate_limit_counts_the_certificates_of_a_batch(db_url: str, hub: Hub, kit: Kit) -> None:
    """A batch is charged one request per ITEMS_PER_REQUEST certificates, at most a burst's worth."""
    chain = chain_of(kit, 145)
    limits = ("--public-rate", "0", "--station-rate", "5", "--station-burst", "20")
    with live_hub(db_url, *limits) as url, client_for(url, kit.token) as c:
        assert statuses(send(c, chain[:45])) == [(201, "stored")] * 45  # 15 of the 20 requests' worth
        r = send(c, chain[45:75])  # 10 more at once: over the budget
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        time.sleep(4.2)  # the bucket is full again (20)
        assert statuses(send(c, chain[45:145])) == [(201, "stored")] * 100  # 34 > a burst: takes 20
    assert_linked(hub, kit.key.kid, 145)
