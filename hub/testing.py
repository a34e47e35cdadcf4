"""Run the hub for tests and benchmarks: uvicorn on a loopback port, and a throwaway PostgreSQL.

``postgres_cluster()`` creates a PostgreSQL cluster in a temporary directory (``initdb`` + ``pg_ctl``,
as the ``postgres`` user when run as root), listening on 127.0.0.1 only, and removes it afterwards;
``crash_and_restart(url)`` stops it as a crash would and starts it again.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from hub.errors import HubError
from hub.server import ServerLimits, uvicorn_options


class PostgresUnavailable(HubError):
    """No PostgreSQL server could be started here."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def serve_in_thread(
    app: Any, port: int | None = None, *, limits: ServerLimits | None = None, **kwargs: Any
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread, configured as ``station-hub serve``
    configures it (:func:`hub.server.uvicorn_options`); yields the base URL."""
    port = port or free_port()
    options = {**uvicorn_options(limits), **kwargs}
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"hub-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the hub did not start on port {port}")
        time.sleep(0.01)
    scheme = "https" if kwargs.get("ssl_certfile") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise PostgresUnavailable(
            f"{name} not found", hint="apt-get install postgresql (Debian 12 ships PostgreSQL 15)"
        )
    return candidates[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextmanager
def postgres_cluster(settings: dict[str, str] | None = None) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1; yields its admin URL (``postgresql://postgres@...``).

    ``settings``: extra server settings (``-c name=value``), e.g. ``shared_buffers`` for benchmarks.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    root = tempfile.mkdtemp(prefix="tabula-pg-")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.mkdir(sock)
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, pw.pw_uid, pw.pw_gid)
    port = free_port()
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    started = False
    try:
        r = subprocess.run(
            _as_postgres([initdb, "-D", data, "-A", "trust", "-U", user, "--no-sync", "-E", "UTF8"]),
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {r.stderr.strip()[-500:]}")
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50"
        opts += "".join(f" -c {k}={v}" for k, v in (settings or {}).items())
        r = subprocess.run(
            _as_postgres([pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"]),
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            log = ""
            if os.path.exists(os.path.join(root, "log")):
                with open(os.path.join(root, "log")) as fh:
                    log = fh.read()[-800:]
            raise PostgresUnavailable(f"pg_ctl start failed: {r.stderr.strip()[-300:]} {log}")
        started = True
        url = f"postgresql://{user}@127.0.0.1:{port}/postgres"
        _RUNNING[port] = (pg_ctl, data, opts, os.path.join(root, "log"))
        yield url
    finally:
        _RUNNING.pop(port, None)
        if started:
            subprocess.run(
                _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


_RUNNING: dict[int, tuple[str, str, str, str]] = {}  # port -> pg_ctl, data dir, options, log


def crash_and_restart(url: str) -> None:
    """Stop the cluster of ``url`` as a crash would (``pg_ctl stop -m immediate``: no checkpoint,
    what was not flushed to the WAL is lost) and start it again (WAL recovery)."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    pg_ctl, data, opts, log = _RUNNING[port]
    for argv in (
        [pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
        [pg_ctl, "-D", data, "-o", opts, "-l", log, "-w", "start"],
    ):
        r = subprocess.run(_as_postgres(argv), capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(argv[2:5])} failed: {r.stderr.strip()[-300:]}")


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the cluster of ``admin_url``; returns its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is generated by the caller
    return admin_url.rsplit("/", 1)[0] + "/" + name
