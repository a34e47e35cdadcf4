"""Ingest under real concurrency: parallel clients against a hub process, SQLite and PostgreSQL.

The hub runs as ``station-hub serve`` in its own process (tests/test_hub_support.live_hub); each
client is a thread with its own connection, and a barrier releases them together.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from certs.jws import parse_envelope
from certs.model import Certificate
from hub.db import CertificateRow, StationInfo
from hub.ingest import new_row
from hub.service import Hub
from hub.testing import free_port
from tests.test_hub_support import at_once, cert_at, client_for, fake_hash, live_hub, put, start_hub
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    db_url,
    enrolled,
    hub,
    kit,
    make_kit,
    make_org,
    org,
    pg_admin_url,
)


@pytest.fixture
def live(db_url: str, hub: Hub, kit: Kit) -> Iterator[str]:
    with live_hub(db_url) as url:
        yield url


def _stored(hub: Hub, kid: str) -> dict[int, CertificateRow]:
    with hub.session() as s:
        return {
            r.sequence: r for r in s.scalars(select(CertificateRow).where(CertificateRow.station_kid == kid))
        }


def test_identical_concurrent_uploads_are_all_2xx(live: str, hub: Hub, kit: Kit) -> None:
    n = 12
    for round_ in range(5):
        cert_id, body, _ = cert_at(kit, round_ + 1, kit.previous if round_ else None)
        clients = [client_for(live, kit.token) for _ in range(n)]
        for c in clients:
            c.get("/healthz")  # connections open before the barrier: the PUTs leave together
        answers = at_once([lambda c=c, i=cert_id, b=body: put(c, i, b) for c in clients])
        for c in clients:
            c.close()
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * (n - 1) + [201], [a.text for a in answers if a.status_code >= 300]
        assert {a.json()["certificate_id"] for a in answers} == {cert_id}
    assert len(_stored(hub, kit.key.kid)) == 5


def test_non_linking_neighbours_uploaded_together_store_exactly_one(live: str, hub: Hub, kit: Kit) -> None:
    """200 pairs n / n+1 whose chain does NOT link, sent at the same moment: one stored, one chain_break."""
    pairs = []
    for i in range(200):
        n = 10 * i + 5  # pairs far apart: each pair's neighbours are only each other
        first = cert_at(kit, n, fake_hash(f"before-{i}"))
        second = cert_at(kit, n + 1, fake_hash(f"not-{i}"))  # does not link to `first`
        pairs.append((first, second))
    a, b = client_for(live, kit.token), client_for(live, kit.token)
    a.get("/healthz"), b.get("/healthz")
    refused = 0
    for (id1, body1, _), (id2, body2, _) in pairs:
        r1, r2 = at_once([lambda i=id1, x=body1: put(a, i, x), lambda i=id2, x=body2: put(b, i, x)])
        codes = sorted((r1.status_code, r2.status_code))
        assert codes == [201, 422], (r1.text, r2.text)
        loser = r1 if r1.status_code == 422 else r2
        assert loser.json()["error"] == "chain_break"
        refused += 1
    a.close(), b.close()
    stored = _stored(hub, kit.key.kid)
    assert len(stored) == 200 and refused == 200
    for i in range(200):
        n = 10 * i + 5
        assert (n in stored) != (n + 1 in stored)


def test_forks_are_refused_whatever_the_order_or_timing(live: str, hub: Hub, kit: Kit) -> None:
    """Two different certificates after one predecessor: only one of them is ever stored."""
    c = client_for(live, kit.token)
    id1, body1, d1 = cert_at(kit, 1, None)
    assert put(c, id1, body1).status_code == 201
    # Same sequence, same predecessor, different content: at most one wins, concurrently.
    forks = [cert_at(kit, 2, d1, serial=f"FORK-{j}") for j in range(6)]
    clients = [client_for(live, kit.token) for _ in forks]
    for cl in clients:
        cl.get("/healthz")
    answers = at_once([lambda cl=cl, f=f: put(cl, f[0], f[1]) for cl, f in zip(clients, forks, strict=True)])
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 5, [a.text for a in answers]
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"chain_duplicate"}
    # A later number claiming the same predecessor (a fork that skips a number): refused too.
    id3, body3, _ = cert_at(kit, 4, d1)
    r = put(c, id3, body3)
    assert r.status_code == 422 and r.json()["error"] == "chain_break", r.text
    stored = _stored(hub, kit.key.kid)
    assert sorted(stored) == [1, 2] and stored[2].previous == d1
    with hub.session() as s:
        per_previous = s.execute(
            select(CertificateRow.previous, func.count())
            .where(CertificateRow.station_kid == kit.key.kid)
            .group_by(CertificateRow.previous)
        ).all()
    assert all(n == 1 for _, n in per_previous)
    for cl in clients:
        cl.close()
    c.close()


def test_the_database_refuses_a_fork_even_without_the_hub_checks(hub: Hub, kit: Kit, tmp_path: Path) -> None:
    """The constraints are the last line: a raw insert of a forked or duplicate place fails."""

    station = hub.authenticate(f"Bearer {kit.token}")
    assert isinstance(station, StationInfo)
    _, b1, d1 = cert_at(kit, 1, None)
    _, b2, _ = cert_at(kit, 2, d1, serial="A")
    _, b2bis, _ = cert_at(kit, 3, d1, serial="B")  # another successor of #1
    rows = []
    for body in (b1, b2, b2bis):
        env = parse_envelope(body)
        rows.append(new_row(station, Certificate.from_dict(json.loads(env.payload_bytes)), env, body))
    with hub.session() as s, s.begin():
        s.add_all(rows[:2])
    with pytest.raises(IntegrityError), hub.session() as s, s.begin():
        s.add(rows[2])


def test_parallel_stations_interleave_without_breaking_any_chain(
    live: str, hub: Hub, kit: Kit, tmp_path: Path
) -> None:

    org2 = make_org(tmp_path / "o2", "Second Org")
    hub.add_organisation("Second Org", org2.pem)
    kits = [kit] + [enrolled(hub, org2, make_kit(tmp_path / "o2", org2, f"bench-{i}")) for i in range(3)]
    chains = []
    for k in kits:
        chain = []
        for n in range(1, 31):
            chain.append(cert_at(k, n, k.previous if n > 1 else None))
        chains.append((k, chain[::-1]))  # newest first: every upload waits for its neighbours

    def upload(k: Kit, chain: list[tuple[str, bytes, str]]) -> list[int]:
        with client_for(live, k.token) as c:
            return [put(c, cid, body).status_code for cid, body, _ in chain]

    results = at_once([lambda k=k, ch=ch: upload(k, ch) for k, ch in chains])
    assert all(codes == [201] * 30 for codes in results), results
    for k, _ in chains:
        stored = _stored(hub, k.key.kid)
        assert sorted(stored) == list(range(1, 31))
        for n in range(2, 31):
            assert stored[n].previous == stored[n - 1].digest
    assert httpx.get(f"{live}/healthz").status_code == 200


def test_kill_9_of_the_hub_during_a_drain_of_300_leaves_exactly_300(db_url: str, hub: Hub, kit: Kit) -> None:
    """The hub is killed (SIGKILL) twice while 300 certificates stream in, at whatever point of a
    request it is (another thread kills it as soon as 90, then 200 answers came back); the client
    retries whatever got no answer.  Afterwards: exactly 300 stored, one chain, every link intact."""

    chain = [cert_at(kit, n, kit.previous if n > 1 else None) for n in range(1, 301)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = [start_hub(db_url, port)]
    progress = [0]
    kills = 0
    lock = threading.Lock()

    def killer() -> None:
        nonlocal kills
        for threshold in (90, 200):
            while progress[0] < threshold:
                time.sleep(0.001)
            with lock:
                procs[-1].send_signal(signal.SIGKILL)  # mid-request: the client is always sending
                procs[-1].wait()
                kills += 1
                procs.append(start_hub(db_url, port))

    thread = threading.Thread(target=killer)
    thread.start()
    retried = 0
    with client_for(url, kit.token) as c:
        for cid, body, _ in chain:
            while True:
                try:
                    r = put(c, cid, body)
                except httpx.TransportError:
                    retried += 1
                    time.sleep(0.1)  # the hub is down: retry, as station sync does
                    continue
                if r.status_code == 503:
                    time.sleep(0.1)
                    continue
                assert r.status_code in (200, 201), r.text
                break
            progress[0] += 1
    thread.join(60)
    procs[-1].terminate()
    procs[-1].wait(10)
    assert kills == 2 and retried >= 2
    stored = _stored(hub, kit.key.kid)
    assert sorted(stored) == list(range(1, 301))
    for n in range(2, 301):
        assert stored[n].previous == stored[n - 1].digest
