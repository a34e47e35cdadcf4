"""State paths: one home for every package, whoever runs the station."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certs.cli import main as certs_main
from certs.fsio import default_cert_dir, default_key_dir, default_trust_dir, tabula_home
from host import paths


@pytest.fixture
def non_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A non-root user with XDG_STATE_HOME set and no TABULA_HOME."""
    monkeypatch.delenv("TABULA_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    state = tmp_path / "xdg-state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "tabula"


def test_certs_and_station_share_the_xdg_state_home(non_root: Path) -> None:
    assert paths.home() == non_root
    assert tabula_home() == paths.home()
    assert default_key_dir() == paths.keys_dir() == non_root / "keys"
    assert default_cert_dir() == paths.certs_dir() == non_root / "certs"
    assert default_trust_dir() == paths.trust_dir() == non_root / "trust"


def test_station_keys_writes_where_station_erase_signs(non_root: Path) -> None:
    """`station keys init` creates the key in the directory `station erase` hands its workers."""
    assert certs_main(["keys", "init", "--station-id", "bench-1"]) == 0
    assert (paths.keys_dir() / "station.key").is_file()
    assert not (Path(os.environ["HOME"]) / ".local" / "state" / "tabula").exists()


def test_without_xdg_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TABULA_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_key_dir() == tmp_path / ".local" / "state" / "tabula" / "keys"


def test_root_and_tabula_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TABULA_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_key_dir() == Path("/var/lib/tabula/keys")
    monkeypatch.setenv("TABULA_HOME", str(tmp_path))
    assert default_key_dir() == paths.keys_dir() == tmp_path / "keys"
