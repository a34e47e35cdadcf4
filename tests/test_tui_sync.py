"""The drive list's sync line and per-drive "synced" status, with real erasures and real certificates.

Three stations: no hub configured ("sync off"); a hub configured but unreachable (nothing listens on
127.0.0.1:9: the certificate stays pending with the error shown); and a real hub (Starlette + SQLite
on a loopback port) that enrolled the station, where the drive's status becomes "synced".
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from station.i18n import set_language
from station.sync import status
from station.sync.config import SyncConfig, save_config, write_token
from station.tui import model
from station.tui.app import TabulaApp
from tests.test_tui_flows import app_for, row_status, until

pytestmark = [pytest.mark.root]

MiB = 1 << 20


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    yield
    set_language("en")


def sync_line(app: TabulaApp) -> str:
    from textual.widgets import Static

    return str(app.screen_stack[1].query_one("#sync", Static).render())


_BEFORE: set[threading.Thread] = set()


@pytest.fixture(autouse=True)
def _sync_threads_of_other_tests() -> None:
    """Threads left by earlier tests (an app unmounts without waiting for an upload in flight) are not
    this test's: only the ones started during it count."""
    _BEFORE.clear()
    _BEFORE.update(t for t in threading.enumerate() if t.name == "tabula-sync")


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tabula-sync" and t.is_alive() and t not in _BEFORE]


async def erase_one(pilot: object, app: TabulaApp, dev: str) -> None:
    await until(pilot, lambda: app.scans > 0)
    await pilot.press("e", "down", "enter")  # type: ignore[attr-defined]  # "zero"
    await pilot.press(*os.path.basename(dev), "enter")  # type: ignore[attr-defined]
    bench = app.benches[-1]
    await until(
        pilot, lambda: bench.settled(app.book) and all(app.book.jobs[d].certificates for d in bench.job_dirs)
    )
    await pilot.press("escape")  # type: ignore[attr-defined]


def configure(home: Path, url: str, token: str = "not-a-real-token") -> None:
    token_file = home / "sync" / "token"
    write_token(token_file, token)
    save_config(SyncConfig(url=url, token_file=token_file, interval=60.0, timeout=2.0), home)


@pytest.mark.parametrize(
    ("lang", "off"), [("en", "Sync off (no hub configured)"), ("fr", "Synchro désactivée")]
)
async def test_without_a_hub_sync_is_off(
    home: Path, make_loop: Callable[..., str], lang: str, off: str
) -> None:
    dev = make_loop(8 * MiB)
    app = app_for(home, [dev], lang=lang, sync_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.sync_polls > 0)
        assert off in sync_line(app)
        assert app.sync_daemon is None and not sync_threads()


async def test_unreachable_hub_keeps_the_certificate_pending_and_shows_the_error(
    home: Path, make_loop: Callable[..., str]
) -> None:
    configure(home, "http://127.0.0.1:9")
    dev = make_loop(8 * MiB)
    app = app_for(home, [dev], sync_interval=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.sync_polls > 0)
        assert app.sync_daemon is not None and sync_threads()
        await erase_one(pilot, app, dev)
        await until(pilot, lambda: status(home).pending == 1 and status(home).last_error is not None)
        await until(pilot, lambda: "1 pending" in sync_line(app) and "error" in sync_line(app))
        line = sync_line(app)
        assert line.startswith("Sync: 1 pending, nothing sent yet, error "), line
        assert app.sync.level == "error"
        assert row_status(app, dev) == "signed"  # not "synced": the hub never got it
    app.stop_sync(timeout=10)
    assert not sync_threads()  # the uploader stopped with the TUI


async def test_certificate_sent_to_a_real_hub_shows_synced(
    home: Path, tmp_path: Path, make_loop: Callable[..., str]
) -> None:
    from certs.jws import envelope_bytes
    from certs.keys import endorse, init_org_key, init_station_key, install_endorsement, public_pem
    from hub.app import create_app as create_hub
    from hub.service import Hub
    from hub.testing import serve_in_thread

    org = init_org_key(tmp_path / "org", "Atelier Réemploi")
    station = init_station_key(home / "keys", "bench-tui")  # the TUI finds it and does not make another
    endorsement = envelope_bytes(endorse(org, "bench-tui", station.public))
    install_endorsement(home / "keys", endorsement)
    hub = Hub(f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    try:
        hub.add_organisation(org.name, public_pem(org.public).encode())
        _info, token = hub.enroll(endorsement)
        with serve_in_thread(create_hub(hub)) as url:
            configure(home, url, token)
            dev = make_loop(8 * MiB)
            app = app_for(home, [dev], sync_interval=0.1)
            async with app.run_test(size=(80, 24)) as pilot:
                await erase_one(pilot, app, dev)
                await until(pilot, lambda: row_status(app, dev) == "synced")
                await until(pilot, lambda: sync_line(app).startswith("Sync: 0 pending, last sent "))
                assert app.sync.level == "ok" and "error" not in sync_line(app)
            app.stop_sync(timeout=10)
        assert hub.count() == 1
        job = next(iter(app.book.jobs.values()))
        assert (
            hub.get(model.certificate_id(job.job_dir) or "").body
            == Path(next(p for p in job.certificates if p.endswith(".json"))).read_bytes()
        )
    finally:
        hub.engine.dispose()


def test_sync_line_words() -> None:
    set_language("en")
    now = 1_800_000_000.0
    assert model.sync_view(configured=False).text == "Sync off (no hub configured)"
    v = model.sync_view(configured=True, pending=3, last_error="connect refused", last_error_at=now, now=now)
    assert v.level == "error" and v.text.startswith("Sync: 3 pending, nothing sent yet, error ")
    assert v.text.endswith(": connect refused")
    ok = model.sync_view(
        configured=True, last_success_at=now, last_error="old", last_error_at=now - 60, now=now
    )
    assert ok.level == "ok" and "error" not in ok.text  # an error older than the last success is over
    # Refused for good: a warning with the hub's reason, not an error (the hub is fine; a person must
    # fix the cause and `station sync --requeue`); documents backing off alone are counted.
    refused = model.sync_view(
        configured=True,
        rejected=2,
        retrying=1,
        pending=1,
        refused_reason="chain_break",
        last_success_at=now,
        now=now,
    )
    assert refused.level == "warn"
    assert refused.text == "Sync: 1 pending, 1 retrying, last sent " + model.clock(now, now) + (
        ", 2 refused by the hub: chain_break"
    )
    long = model.sync_view(configured=True, rejected=1, refused_reason="HTTP 422: " + "x" * 80, now=now)
    assert long.text.endswith("…") and len(long.text) < 100
    assert model.sync_view(configured=True, rejected=1, now=now).text.endswith(", 1 refused by the hub")
    set_language("fr")
    fr = model.sync_view(
        configured=True, pending=2, rejected=1, retrying=2, refused_reason="asset_too_long", now=now
    )
    assert fr.text == (
        "Synchro : 2 en attente, 2 à réessayer, rien d'envoyé encore, 1 refusé(s) par le serveur : asset_too_long"
    )
