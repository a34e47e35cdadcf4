"""Issue 7's done-when: 1,000 certificates produced while the hub is unreachable all arrive exactly
once when it comes back, each findable by serial and asset number and shown as verified; tampered and
foreign-signed uploads are refused.  Against SQLite and a real PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import json
from pathlib import Path

import httpx

from hub.app import create_app
from hub.service import Hub
from hub.testing import free_port, serve_in_thread
from station.sync import enqueue_certificate, status
from station.sync.drain import Backoff, drain
from tests.test_sync_support import (  # noqa: F401
    Kit,
    Org,
    db_url,
    enrolled,
    hub,
    kit,
    make_kit,
    org,
    pg_admin_url,
)

COUNT = 1000


def test_thousand_certificates_made_offline_arrive_exactly_once(
    tmp_path: Path, hub: Hub, org: Org, kit: Kit
) -> None:
    port = free_port()
    config = kit.config(f"http://127.0.0.1:{port}", timeout=5.0)
    paths = kit.mint(COUNT)
    for p in paths:  # each certificate is queued as it is written, while the hub is unreachable
        enqueue_certificate(p, home=kit.home)
    offline = drain(kit.home, config)
    assert offline.error is not None and offline.sent == 0 and status(kit.home).pending == COUNT

    with serve_in_thread(create_app(hub), port=port) as url:
        for _ in range(5):
            if drain(kit.home, config, backoff=Backoff(base=0.05, cap=0.1)).complete:
                break
        st = status(kit.home)
        assert (st.pending, st.sent, st.rejected, st.last_error) == (0, COUNT, 0, None)
        assert hub.count() == COUNT

        auth = {"Authorization": f"Bearer {kit.token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
            for p in paths:  # every one stored, byte for byte
                assert hub.get(p.stem).body == p.read_bytes()
            sample = paths[:: COUNT // 50] + [paths[-1]]
            for p in sample:
                media = _media(p)
                for key in ("serial", "asset_number"):
                    found = client.get("/api/v1/certificates", params={key: media[key]}).json()[
                        "certificates"
                    ]
                    assert [c["certificate_id"] for c in found] == [p.stem]
                    assert found[0]["verified"] is True and found[0]["kind"] == "certificate"
                page = client.get(f"/verify/{p.stem}")
                assert "Erased and verified" in page.text
            chain = client.get("/api/v1/stations/bench-1").json()
            assert (chain["count"], chain["highest"], chain["gaps"]) == (COUNT, COUNT, [])

            # Tampered: one byte of the signed payload changed.  Foreign: another station's certificate.
            tampered_cert = kit.certificate()
            body = json.loads(kit.sign(tampered_cert))
            body["payload"] = (
                body["payload"][:-2] + ("A" if body["payload"][-2] != "A" else "B") + body["payload"][-1]
            )
            r = client.put(f"/api/v1/certificates/{tampered_cert.certificate_id}", content=json.dumps(body))
            assert r.status_code == 422 and r.json()["error"] in ("bad_signature", "malformed")
            other = enrolled(hub, org, make_kit(tmp_path, org, "bench-2"))
            foreign = other.certificate()
            r = client.put(f"/api/v1/certificates/{foreign.certificate_id}", content=other.sign(foreign))
            assert r.status_code == 403 and r.json()["error"] == "foreign_signature"
        assert hub.count() == COUNT


def _media(path: Path) -> dict[str, str]:
    import base64

    env = json.loads(path.read_bytes())
    payload = json.loads(base64.urlsafe_b64decode(env["payload"] + "=" * (-len(env["payload"]) % 4)))
    return {"serial": payload["media"]["serial"], "asset_number": payload["media"]["asset_number"]}
