"""Issue 3's done-when, end to end: a certificate produced by `station erase` on a loop device verifies
with `station verify` and with the openssl-only recipe; a single-byte change makes both reject it; the
PDF alone verifies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from certs.keys import export_public
from station.cli import main
from tests.test_certs_openssl import run_recipe

pytestmark = [pytest.mark.root, pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")]


def test_erase_certificate_verifies_everywhere_and_any_byte_change_is_caught(
    make_loop: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TABULA_HOME", str(home))
    dev = make_loop(4 << 20, fill=b"\x42")
    assert main(["erase", dev, "--method", "zero", "--yes", "--include-loop"]) == 0
    capsys.readouterr()
    (cert,) = (home / "certs").glob("*.json")
    pdf = cert.with_suffix(".pdf")
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "station.pem").write_text(export_public(home / "keys"))
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "pub.pem").write_text(export_public(home / "keys"))

    assert main(["verify", "--trust", str(trust), str(cert), str(pdf)]) == 0
    r = run_recipe(audit, cert)
    assert r.returncode == 0 and "Signature Verified Successfully" in r.stdout, r.stderr

    original = cert.read_bytes()
    # one byte inside the signed payload, one inside the signature
    payload_at = original.index(b'"payload"') + 20
    signature_at = original.index(b'"signature"') + 20
    for at in (payload_at, signature_at):
        tampered = bytearray(original)
        tampered[at] = ord("B") if tampered[at] != ord("B") else ord("C")
        cert.write_bytes(bytes(tampered))
        capsys.readouterr()
        assert main(["verify", "--trust", str(trust), str(cert)]) != 0
        r = run_recipe(audit, cert)
        assert r.returncode != 0 or "Signature Verified Successfully" not in r.stdout
    cert.write_bytes(original)
    # the PDF alone: move the JSON away, the PDF still verifies
    cert.unlink()
    capsys.readouterr()
    assert main(["verify", "--trust", str(trust), str(pdf)]) == 0
    assert "OK" in capsys.readouterr().out
