"""Chain heads, organisation-signed revocation lists and the new key-role checks, on both databases."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from certs.chainhead import sign_chain_head
from certs.jws import envelope_bytes
from certs.keys import endorse, public_pem, role_pem
from certs.revocation import read_revocation_list, revoke
from hub.app import create_app
from hub.cli import main as hub_main
from hub.errors import AdminError
from hub.openapi import openapi_spec
from hub.revocations import accept
from hub.service import REVOCATION_RECHECK, Hub
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


def head_of(kit: Kit, sequence: int, digest: str, *, station: Kit | None = None) -> bytes:
    signer = station or kit
    env = sign_chain_head(signer.key, sequence, digest, endorsement=json.loads(signer.endorsement))
    return envelope_bytes(env)


def post(c: httpx.Client, body: bytes) -> httpx.Response:
    return c.post("/api/v1/chain-heads", content=body)


def test_chain_heads_are_kept_append_only_and_never_go_backwards(
    hub_url: str, hub: Hub, kit: Kit, org: Org, tmp_path: Path
) -> None:
    with client_for(hub_url, kit.token) as c:
        digests = []
        for n in range(1, 5):
            cid, body, digest = cert_at(kit, n, kit.previous if n > 1 else None)
            assert put(c, cid, body).status_code == 201
            digests.append(digest)
        two = head_of(kit, 2, digests[1])
        assert post(c, two).status_code == 201
        assert post(c, two).status_code == 200  # the same head again
        four = head_of(kit, 4, digests[3])
        assert post(c, four).status_code == 201
        r = post(c, head_of(kit, 3, digests[2]))
        assert r.status_code == 409 and r.json()["error"] == "chain_head_regression"
        r = post(c, head_of(kit, 4, "ab" * 32))  # the hub holds another #4
        assert r.status_code == 409 and r.json()["error"] == "chain_fork"
        r = post(c, head_of(kit, 9, "cd" * 32))  # ahead of what was uploaded: the station's word
        assert r.status_code == 201
        other = make_kit(tmp_path / "x", org, "other")  # not enrolled: its head is not this station's
        r = post(c, head_of(kit, 9, "cd" * 32, station=other))
        assert r.status_code == 403 and r.json()["error"] == "foreign_signature"
        r = post(c, b'{"protected": 1}')
        assert r.status_code == 422 and r.json()["error"] == "malformed"
        r = c.post("/api/v1/chain-heads", content=head_of(kit, 9, "cd" * 32), headers={"Authorization": ""})
        assert r.status_code == 401
    listed = httpx.get(f"{hub_url}/api/v1/chain-heads/{kit.key.kid}").json()["chain_heads"]
    assert [h["sequence"] for h in listed] == [9, 4, 2]
    assert httpx.get(f"{hub_url}/api/v1/chain-heads/{kit.key.kid.upper()}/latest").json()["payload"]
    assert httpx.get(f"{hub_url}/api/v1/chain-heads/{'0' * 64}/latest").status_code == 404


# --- organisation-signed revocation lists -----------------------------------------------------------


def _list(org: Org, kid: str, at: datetime, existing: bytes | None = None) -> bytes:
    prior = read_revocation_list(existing) if existing else None
    return envelope_bytes(revoke(org.key, kid, reason="key_compromise", at=at, existing=prior))


def test_a_signed_revocation_list_is_served_as_is_and_applied(
    db_url: str, hub_url: str, hub: Hub, kit: Kit, org: Org, tmp_path: Path
) -> None:
    url = f"{hub_url}/api/v1/organisations/{org.key.kid}/revocations.jws"
    assert httpx.get(url).status_code == 404
    with client_for(hub_url, kit.token) as c, live_hub(db_url) as other:
        before_id, body, digest = cert_at(kit, 1, None)
        assert put(c, before_id, body).status_code == 201
        assert httpx.get(f"{other}/api/v1/certificates/{before_id}").json()["verified"]  # cached there
        # Revoked from a time before that certificate was signed (it was stolen earlier).
        data = _list(org, kit.key.kid, datetime.now(UTC) - timedelta(days=2))
        r = httpx.put(url, content=data, headers={"Content-Type": "application/json"})
        assert r.status_code == 201 and r.json()["revoked"] == [kit.key.kid]
        assert httpx.put(url, content=data, headers={"Content-Type": "application/json"}).status_code == 200
        assert httpx.get(url).content == data
        links = httpx.get(f"{hub_url}/api/v1/organisations").json()["organisations"][0]["links"]
        assert links["revocation_list"].endswith("/revocations.jws")
        # This process dropped its cached verdicts at once; the other within REVOCATION_RECHECK.
        assert httpx.get(f"{hub_url}/api/v1/certificates/{before_id}").json()["reason"] == "revoked_key"
        deadline = time.monotonic() + REVOCATION_RECHECK + 5
        while httpx.get(f"{other}/api/v1/certificates/{before_id}").json()["reason"] != "revoked_key":
            assert time.monotonic() < deadline, "the other hub process never saw the new list"
            time.sleep(0.5)
        cid, body, _ = cert_at(kit, 2, digest)
        r = put(c, cid, body)
        assert r.status_code == 422 and r.json()["error"] == "revoked_key"
    older = _list(org, kit.key.kid, datetime.now(UTC) - timedelta(days=9))
    time.sleep(1.1)  # a newer issued_at (seconds) for the next list
    newer = _list(org, "ef" * 32, datetime.now(UTC), existing=data)
    assert hub_main(["org", "revocations", "--db", db_url, _write(tmp_path / "n.json", newer)]) == 0
    r = httpx.put(url, content=older, headers={"Content-Type": "application/json"})
    assert r.status_code == 409 and r.json()["error"] == "stale_revocation_list"
    stranger = make_org(tmp_path / "s", "Stranger")
    foreign = envelope_bytes(revoke(stranger.key, kit.key.kid, reason="superseded"))
    r = httpx.put(url, content=foreign, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "wrong_organisation"
    r = httpx.put(url, content=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert httpx.get(url).content == newer


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_keys_are_registered_and_enrolled_by_their_role_and_validity(
    hub: Hub, org: Org, tmp_path: Path
) -> None:
    station = make_kit(tmp_path / "k", org, "bench-9")
    with pytest.raises(AdminError, match="station key"):
        hub.add_organisation("Not an org", role_pem(station.key.public, "station", "bench-9").encode())
    with pytest.raises(AdminError, match="log key"):
        hub.add_organisation("Not an org", role_pem(station.key.public, "log").encode())
    hub.add_organisation(
        "Bare PEMs are organisation keys", public_pem(make_org(tmp_path / "b").key.public).encode()
    )
    now = datetime.now(UTC)
    expired = endorse(
        org.key,
        "bench-9",
        station.key.public,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    with pytest.raises(AdminError, match="expired"):
        hub.enroll(envelope_bytes(expired))
    # A key the organisation's signed list revokes is not enrolled.
    accept(hub, envelope_bytes(revoke(org.key, station.key.kid, reason="key_compromise")))
    with pytest.raises(AdminError, match="revoked by"):
        hub.enroll(station.endorsement)


def test_every_route_is_in_the_openapi_description(hub: Hub) -> None:
    spec = openapi_spec()["paths"]
    for route in create_app(hub).routes:
        if route.path in ("/", "/healthz", "/openapi.json"):  # a redirect, the service routes
            continue
        assert route.path in spec, route.path
        for method in (route.methods or set()) - {"HEAD"}:
            assert method.lower() in spec[route.path], (route.path, method)
