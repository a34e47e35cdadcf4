"""A station keeps the hub's proofs, publishes its chain head, and witnesses the log (real hub, HTTP).

End to end: ``station sync`` to a real hub (SQLite and PostgreSQL), then ``station verify`` offline
on the station's folder with nothing but the organisation key and the hub's log key.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.test_sync_support)

from __future__ import annotations

import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from certs.chainhead import CHAIN_HEAD_FILE, read_chain_head
from certs.cli import main as station_main
from certs.keys import ROLE_LOG, role_pem
from certs.merkle import Frontier
from certs.tlog import format_timestamp, sign_tree_head
from hub.service import Hub
from hub.testing import serve_in_thread
from station.sync.cli import EXIT_UNDELIVERED, _drain_now
from station.sync.drain import drain
from station.sync.logsync import CONFLICT_FILE, LOG_KEY_FILE, TREE_HEAD_FILE
from station.sync.outbox import Outbox, db_path
from station.sync.state import status
from tests.test_sync_support import (  # noqa: F401  (fixtures)
    Kit,
    Org,
    db_url,
    hub,
    hub_url,
    kit,
    org,
    pg_admin_url,
)


def mint(kit: Kit, n: int) -> list[Path]:
    """``n`` certificates, and the station's sequence state naming the newest (as certs.issue leaves it)."""
    paths = kit.mint(n)
    state = {"kid": kit.key.kid, "sequence": kit.sequence, "last_digest": kit.previous}
    (kit.home / "keys" / "sequence.json").write_text(json.dumps(state))
    return paths


def offline(
    capsys: pytest.CaptureFixture[str], kit: Kit, org: Org, hub_url: str, *extra: str
) -> tuple[int, Any]:
    """``station verify`` as an auditor runs it: the organisation key and the hub's log key only."""
    trust = kit.home.parent / "auditor"
    trust.mkdir(exist_ok=True)
    (trust / "org.pem").write_bytes(org.pem)
    key = kit.home.parent / "hub-log.pem"
    key.write_bytes(httpx.get(f"{hub_url}/api/v1/log/key.pem").content)
    code = station_main(["verify", "--trust", str(trust), "--log", str(key), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_synced_folder_verifies_offline_with_its_proofs_and_chain_head(
    hub_url: str, kit: Kit, org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = mint(kit, 5)
    result = drain(kit.home, kit.config(hub_url))
    assert (result.sent, result.proofs_kept, result.chain_head, result.log_error) == (5, 5, 5, None)
    with Outbox(kit.home) as box:
        for p in paths:
            sidecar = p.with_name(p.stem + ".log.json")
            assert box.proof_of(p.stem) == sidecar.read_bytes()
    head = kit.cert_dir / CHAIN_HEAD_FILE
    assert read_chain_head(head.read_bytes()).sequence == 5
    assert httpx.get(f"{hub_url}/api/v1/chain-heads/{kit.key.kid}/latest").content == head.read_bytes()
    assert (kit.home / "sync" / LOG_KEY_FILE).is_file() and (kit.home / "sync" / TREE_HEAD_FILE).is_file()
    code, report = offline(capsys, kit, org, hub_url, "--chain", str(kit.cert_dir))
    assert code == 0, report
    assert sorted(r["log"]["leaf_index"] for r in report["results"]) == list(range(5))
    assert [(f["kind"], f["ok"]) for f in report["files"]] == [("chain_head", True)]
    st = status(kit.home)
    assert (st.without_proof, st.chain_head_sequence, st.log_alarm) == (0, 5, None)
    # A second pass with nothing new publishes nothing and keeps what it has.
    again = drain(kit.home, kit.config(hub_url))
    assert (again.sent, again.proofs_kept, again.chain_head) == (0, 0, None)
    # The newest certificate deleted: the chain head the station published shows it.
    paths[-1].unlink()
    code, report = offline(capsys, kit, org, hub_url, "--chain", str(kit.cert_dir))
    assert code == 1 and report["files"][0]["reason"] == "chain_truncated"


def test_proofs_missing_from_earlier_syncs_are_fetched_by_a_later_pass(
    hub_url: str, kit: Kit, org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = mint(kit, 4)
    assert drain(kit.home, kit.config(hub_url)).sent == 4
    # As after an upgrade from a station without the log: no proof kept, no sidecar.
    with sqlite3.connect(db_path(kit.home)) as conn:
        conn.execute("UPDATE items SET log_proof = NULL, log_proof_at = NULL")
    for p in paths:
        p.with_name(p.stem + ".log.json").unlink()
    assert status(kit.home).without_proof == 4
    code, report = offline(capsys, kit, org, hub_url, str(kit.cert_dir))
    assert code == 1 and {r["reason"] for r in report["results"]} == {"log_proof_missing"}
    result = drain(kit.home, kit.config(hub_url))
    assert (result.sent, result.proofs_kept) == (0, 4)
    assert status(kit.home).without_proof == 0
    assert offline(capsys, kit, org, hub_url, str(kit.cert_dir))[0] == 0


def test_a_proof_signed_by_another_log_key_is_not_kept(hub_url: str, kit: Kit) -> None:
    mint(kit, 1)
    assert drain(kit.home, kit.config(hub_url)).proofs_kept == 1
    (kit.home / "sync" / LOG_KEY_FILE).write_text(
        role_pem(Ed25519PrivateKey.generate().public_key(), ROLE_LOG)
    )
    (path,) = mint(kit, 1)
    result = drain(kit.home, kit.config(hub_url))
    assert result.sent == 1 and result.proofs_kept == 0
    assert result.log_error is not None and "not the log key given" in result.log_error
    assert not path.with_name(path.stem + ".log.json").exists()
    assert status(kit.home).without_proof == 1


def test_a_hub_that_rewrote_its_log_raises_the_alarm(hub: Hub, hub_url: str, kit: Kit) -> None:
    mint(kit, 2)
    assert drain(kit.home, kit.config(hub_url)).log_alarm is None
    # What the station kept: a tree of 2 whose root the hub's key signed, but which the log does not
    # extend (as if the hub had shown this station another history).
    _, private, _ = hub.log.key()
    other = Frontier()
    other.append(b"\x01" * 32)
    other.append(b"\x02" * 32)
    forged = sign_tree_head(private, 2, other.root(), format_timestamp(datetime.now(UTC)))
    (kit.home / "sync" / TREE_HEAD_FILE).write_text(json.dumps(forged.to_json()))
    mint(kit, 1)
    out = io.StringIO()
    assert _drain_now(kit.home, kit.config(hub_url), False, out) == EXIT_UNDELIVERED
    assert "LOG ALARM" in out.getvalue()
    st = status(kit.home)
    assert st.log_alarm is not None and "not consistent" in st.log_alarm
    assert (kit.home / "sync" / CONFLICT_FILE).is_file()
    kept = json.loads((kit.home / "sync" / TREE_HEAD_FILE).read_text())
    assert kept == forged.to_json()  # the evidence is kept, never overwritten by the newer view


def test_a_hub_older_than_the_log_is_synced_to_without_noise(kit: Kit) -> None:
    """Stations may be upgraded before their hub: no proof to keep, no chain head to publish, no error."""

    async def put_certificate(request: Request) -> Response:
        return JSONResponse({"status": "stored"}, status_code=201)

    old_hub = Starlette(routes=[Route("/api/v1/certificates/{cid}", put_certificate, methods=["PUT"])])
    mint(kit, 2)
    with serve_in_thread(old_hub) as url:
        result = drain(kit.home, kit.config(url))
    assert (result.sent, result.proofs_kept, result.chain_head) == (2, 0, None)
    assert result.log_error is None and result.log_alarm is None and result.complete
    assert status(kit.home).without_proof == 2
    assert not (kit.home / "sync" / LOG_KEY_FILE).exists()
