"""sync.toml written with tomli-w (hostile values round-trip), and the token never sent over plain
http:// to a host that is not loopback unless told ``--insecure-http``."""

from __future__ import annotations

import argparse
import io
import socket
import threading
from pathlib import Path

import psutil
import pytest

from station.sync import enqueue_certificate, status
from station.sync.cli import main as sync_main
from station.sync.cli import register
from station.sync.config import SyncConfig, is_loopback, load_config, save_config, write_token
from station.sync.drain import drain
from station.sync.errors import SyncConfigError
from tests.test_sync_support import make_kit, make_org


@pytest.mark.parametrize(
    "value",
    [
        '/srv/a "quoted" dir/token',
        "/srv/new\nline/token",
        "/srv/back\\slash\\n/token",
        "/srv/'''triple'''/\"\"\"/token",
        "/srv/# not a comment = [x]/token",
        "/srv/tab\there/é ü 漢字/token",
        "/srv/nul-free \u2028 separator/token",
    ],
)
def test_hostile_paths_round_trip_through_sync_toml(tmp_path: Path, value: str) -> None:
    config = SyncConfig(
        url="https://hub.example.org/base?x=\"1\"&y='2'",
        token_file=Path(value),
        ca_bundle=Path(value + ".pem"),
        interval=12.5,
        timeout=3.0,
        deadline=7.25,
        insecure_http=True,
    )
    save_config(config, tmp_path)
    assert load_config(tmp_path) == config
    assert (tmp_path / "sync.toml").stat().st_mode & 0o777 == 0o600


def test_sync_toml_limits(tmp_path: Path) -> None:
    # A path that is not UTF-8 (surrogate-escaped bytes) cannot be written: a clear error, nothing saved.
    with pytest.raises(SyncConfigError, match="not valid UTF-8"):
        save_config(
            SyncConfig(
                url="https://h.example", token_file=Path(b"/srv/\xff".decode(errors="surrogateescape"))
            ),
            tmp_path,
        )
    assert not (tmp_path / "sync.toml").exists()
    # The file the previous release wrote by hand still loads; unknown or mistyped settings are refused.
    (tmp_path / "sync.toml").write_text(
        'url = "https://h.example"\ntoken_file = "/t"\ninterval = 60\ntimeout = 20\n'
    )
    assert load_config(tmp_path) == SyncConfig(url="https://h.example", token_file=Path("/t"))
    for bad, said in [
        ("insecure_http = 'yes'", "true or false"),
        ("deadline = 0", "positive"),
        ("deadline = nan", "positive"),
        ("proxy = 'x'", "unknown setting"),
        ('url = "https://h.example/a b"', "spaces or control"),
        ('url = "ftp://h.example"', "https://"),
        ('url = "https://"', "names no host"),
    ]:
        (tmp_path / "sync.toml").write_text(bad + "\n")
        with pytest.raises(SyncConfigError, match=said):
            load_config(tmp_path)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.45.6.7", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("128.0.0.1", False),
        ("0.0.0.0", False),
        ("192.0.2.7", False),
        ("::", False),
        ("localhost.example.org", False),
        ("hub.example.org", False),
        ("", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_transport() -> None:
    for url in ["https://hub.example.org", "http://127.0.0.1:8080", "http://[::1]:80", "http://localhost/x"]:
        SyncConfig(url=url).check_transport()
    SyncConfig(url="http://192.0.2.7", insecure_http=True).check_transport()
    with pytest.raises(SyncConfigError, match=r"plain http:// to 192\.0\.2\.7") as exc:
        SyncConfig(url="http://192.0.2.7:8080").check_transport()
    assert "--insecure-http" in exc.value.diagnostics()


def _non_loopback_ipv4() -> str:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not is_loopback(a.address):
                return str(a.address)
    pytest.skip("this machine has no IPv4 address outside loopback")


class Listener:
    """A TCP server on this machine's non-loopback address that records what it receives."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.received = b""
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    while b"\r\n\r\n" not in self.received:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        self.received += chunk
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass  # the client gave up: what it sent is recorded

    def close(self) -> None:
        self.sock.close()


def test_the_token_never_goes_over_plain_http_to_another_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listener = Listener(_non_loopback_ipv4())
    kit = make_kit(tmp_path, make_org(tmp_path), "bench-1")
    kit.token = "secret-token-value"
    [cert] = kit.mint(1)
    enqueue_certificate(cert, home=kit.home)
    config = kit.config(listener.url)
    try:
        # The command refuses (exit 2, the reason and the way out on stderr) and connects nowhere.
        assert sync_main(["--url", listener.url, "--token-file", str(config.token_file)]) == 2
        err = capsys.readouterr().err
        assert "refusing to send the station token over plain http://" in err and "--insecure-http" in err
        # The background daemon records the same reason instead of sending.
        result = drain(kit.home, config)
        assert result.config_error and result.error is not None and "plain http://" in result.error
        assert "plain http://" in (status(kit.home).last_error or "")
        assert listener.connections == 0 and listener.received == b""
        # Told so, it sends (and saving remembers it).
        parser = argparse.ArgumentParser(prog="station")
        register(parser.add_subparsers(dest="command"))
        args = parser.parse_args(["sync", "--url", listener.url, "--insecure-http", "--save"])
        assert args.func(args, out=io.StringIO(), home=kit.home) == 3  # the listener answers 503
        assert listener.connections >= 1 and b"Bearer secret-token-value" in listener.received
        assert load_config(kit.home).insecure_http is True
    finally:
        listener.close()


def test_a_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    write_token(token, "t")
    token.chmod(0o644)
    with pytest.raises(SyncConfigError, match="readable by other users"):
        SyncConfig(url="https://h.example", token_file=token).token()
