"""End to end with the real issuance path: `station-hub` admin commands, `certs.issue` (JSON + PDF),
the outbox hook, `station sync`, and the hub's verify page reached through the PDF's QR code URL."""

from __future__ import annotations

import argparse
import io
import json
import stat
from pathlib import Path

import httpx
import pytest

from certs.issue import issue_certificate
from certs.jws import envelope_bytes
from certs.keys import endorse, init_org_key, init_station_key, install_endorsement, public_pem
from certs.settings import CertSettings
from hub.app import create_app
from hub.cli import main as hub_main
from hub.service import Hub
from hub.testing import serve_in_thread
from station.sync import enqueue_certificate, status
from station.sync.cli import register
from tests.fixtures.certs import records


def _station_sync(argv: list[str], home: Path) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sync", *argv])
    out = io.StringIO()
    return args.func(args, out=out, home=home), out.getvalue()


def test_issue_enqueue_sync_and_verify_through_the_qr_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    org_dir, home = tmp_path / "admin", tmp_path / "station"
    org = init_org_key(org_dir, "Atelier Réemploi")
    (org_dir / "org.pem").write_text(public_pem(org.public))
    station = init_station_key(home / "keys", "bench-1")
    endorsement = tmp_path / "bench-1.endorsement.json"
    endorsement.write_bytes(envelope_bytes(endorse(org, "bench-1", station.public)))
    install_endorsement(home / "keys", endorsement.read_bytes())

    assert (
        hub_main(["org", "add", "--db", db, "--name", "Atelier Réemploi", "--pem", str(org_dir / "org.pem")])
        == 0
    )
    token_file = home / "sync" / "token"
    token_file.parent.mkdir(parents=True)
    assert (
        hub_main(["enroll", "--db", db, "--endorsement", str(endorsement), "--token-out", str(token_file)])
        == 0
    )
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert hub_main(["enroll", "--db", db, "--endorsement", str(endorsement)]) == 2  # already enrolled
    printed = capsys.readouterr()
    assert token not in printed.out + printed.err  # written to the 0600 file only
    assert hub_main(["stations", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["station_id"] == "bench-1" and listed[0]["revoked"] is False

    hub = Hub(db)
    with serve_in_thread(create_app(hub)) as url:
        settings = CertSettings(asset_number="PC-9", verification_url=f"{url}/verify")
        issued = issue_certificate(
            records.verified(), key_dir=home / "keys", cert_dir=home / "certs", settings=settings
        )
        enqueue_certificate(issued.json_path, home=home)  # the hook station/certify.py calls
        assert status(home).pending == 1
        code, out = _station_sync(["--url", url, "--token-file", str(token_file), "--save"], home)
        assert code == 0 and "sent 1" in out
        code, out = _station_sync(["--status"], home)  # saved sync.toml is used
        assert code == 0 and "pending:        0" in out and url in out
        qr = f"{url}/verify?id={issued.certificate_id}&sha256={issued.digest}"
        page = httpx.get(qr)
        assert "Erased and verified" in page.text and "Warning" not in page.text
        assert (
            httpx.get(
                f"{url}/api/v1/certificates/{issued.certificate_id}/raw",
                headers={"Authorization": f"Bearer {token}"},
            ).content
            == issued.json_path.read_bytes()
        )
    assert hub_main(["revoke", "--db", db, "bench-1"]) == 0
    hub.engine.dispose()
