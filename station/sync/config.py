"""Where the station uploads to: ``$TABULA_HOME/sync.toml``, overridden by command-line options.

::

    url = "https://hub.example.org"        # the hub's base URL (https in production)
    token_file = "/var/lib/tabula/sync/token"   # the station's bearer token (mode 0600; default shown)
    ca_bundle = "/etc/tabula/hub-ca.pem"    # optional: CA certificate(s) to trust for the hub's TLS
    interval = 60                           # seconds between background drains
    timeout = 20                            # seconds a connect, a send or a read may wait
    deadline = 60                           # seconds one whole upload may take, answer included
    batch = 50                              # certificates per request (1: one by one; hub maximum 100)
    insecure_http = false                   # true: allow plain http:// to a host other than loopback

The token comes from ``station-hub enroll`` on the hub.  It is read from its file when needed and
never printed or logged, and never sent over plain ``http://`` except to this machine (127.0.0.0/8,
``::1``, ``localhost``) unless ``insecure_http`` (``--insecure-http``) says so.
"""

from __future__ import annotations

import ipaddress
import math
import os
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from host import paths
from station.sync.errors import SyncConfigError

CONFIG_NAME = "sync.toml"


def default_token_file(home: Path | None = None) -> Path:
    return (home if home is not None else paths.home()) / "sync" / "token"


_KEYS = ("url", "token_file", "ca_bundle", "interval", "timeout", "deadline", "insecure_http", "batch")
#: Certificates per request by default, and at most (what the hub takes: hub.batch.MAX_ITEMS).
BATCH_DEFAULT, BATCH_MAX = 50, 100


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) or the name ``localhost``: traffic that never leaves the machine."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False  # any other name may resolve anywhere
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _check_url(url: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise SyncConfigError(f"the hub URL must start with https:// (or http://), got {url!r}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise SyncConfigError(f"the hub URL {url!r} contains spaces or control characters")
    try:
        host = urlsplit(url).hostname
    except ValueError as e:
        raise SyncConfigError(f"the hub URL {url!r} is malformed: {e}") from e
    if not host:
        raise SyncConfigError(f"the hub URL {url!r} names no host")


@dataclass(frozen=True)
class SyncConfig:
    url: str = ""
    token_file: Path | None = None
    ca_bundle: Path | None = None
    interval: float = 60.0
    timeout: float = 20.0
    deadline: float = 60.0
    insecure_http: bool = False
    batch: int = BATCH_DEFAULT

    def __post_init__(self) -> None:
        if self.url:
            _check_url(self.url)
        if (
            isinstance(self.batch, bool)
            or not isinstance(self.batch, int)
            or not 1 <= self.batch <= BATCH_MAX
        ):
            raise SyncConfigError(f"batch must be a whole number from 1 to {BATCH_MAX}, got {self.batch!r}")
        if not all(math.isfinite(v) and v > 0 for v in (self.interval, self.timeout, self.deadline)):
            raise SyncConfigError("interval, timeout and deadline must be positive numbers of seconds")

    def check_transport(self) -> None:
        """Refuse to send the token in clear: plain ``http://`` only to loopback, or when told so."""
        parts = urlsplit(self.url)
        if parts.scheme != "http" or self.insecure_http or is_loopback(parts.hostname or ""):
            return
        raise SyncConfigError(
            f"refusing to send the station token over plain http:// to {parts.hostname}: anyone on the "
            "network could read it and upload in this station's name",
            hint="use the hub's https:// URL (--ca-bundle for a private CA); only on a network you "
            "trust, pass --insecure-http (or set insecure_http = true in sync.toml)",
        )

    @property
    def configured(self) -> bool:
        return bool(self.url)

    def base_url(self) -> str:
        if not self.url:
            raise SyncConfigError("no hub URL is configured")
        return self.url.rstrip("/")

    def token(self) -> str:
        path = self.token_file
        if path is None:
            raise SyncConfigError("no token file is configured")
        try:
            st = path.stat()
            data = path.read_text(encoding="ascii").strip()
        except FileNotFoundError as e:
            raise SyncConfigError(f"the token file {path} does not exist") from e
        except (OSError, UnicodeDecodeError) as e:
            raise SyncConfigError(f"cannot read the token file {path}: {e}") from e
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise SyncConfigError(
                f"the token file {path} is readable by other users",
                hint=f"chmod 600 {path}; consider the token leaked and ask the hub admin for a new one",
            )
        if not data:
            raise SyncConfigError(f"the token file {path} is empty")
        return data

    def with_overrides(
        self,
        url: str | None = None,
        token_file: Path | None = None,
        ca_bundle: Path | None = None,
        insecure_http: bool | None = None,
        deadline: float | None = None,
        batch: int | None = None,
    ) -> SyncConfig:
        changes: dict[str, Any] = {}
        if url:
            changes["url"] = url
        if token_file is not None:
            changes["token_file"] = token_file
        if ca_bundle is not None:
            changes["ca_bundle"] = ca_bundle
        if insecure_http:
            changes["insecure_http"] = True
        if deadline is not None:
            changes["deadline"] = deadline
        if batch is not None:
            changes["batch"] = batch
        return replace(self, **changes)

    def to_toml(self) -> str:
        data: dict[str, Any] = {"url": self.url}
        if self.token_file is not None:
            data["token_file"] = str(self.token_file)
        if self.ca_bundle is not None:
            data["ca_bundle"] = str(self.ca_bundle)
        data |= {"interval": self.interval, "timeout": self.timeout, "deadline": self.deadline}
        if self.insecure_http:
            data["insecure_http"] = True
        if self.batch != BATCH_DEFAULT:
            data["batch"] = self.batch
        return tomli_w.dumps(data)


def load_config(home: Path | None = None) -> SyncConfig:
    """The saved configuration (defaults when there is no ``sync.toml``)."""
    base = home if home is not None else paths.home()
    path = base / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise SyncConfigError(f"cannot read {path}: {e}") from e
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise SyncConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    try:
        return _from_toml(data, home)
    except (TypeError, ValueError) as e:
        raise SyncConfigError(f"{path}: {e}") from e


def _from_toml(data: dict[str, Any], home: Path | None) -> SyncConfig:
    insecure = data.get("insecure_http", False)
    if not isinstance(insecure, bool):
        raise TypeError(f"insecure_http must be true or false, got {insecure!r}")
    return SyncConfig(
        # The live image's kernel parameter tabula.sync=URL arrives as TABULA_SYNC: it names the
        # hub when sync.toml does not (the persistence partition's file wins once saved).
        url=str(data.get("url", "")) or os.environ.get("TABULA_SYNC", ""),
        token_file=Path(data["token_file"]) if "token_file" in data else default_token_file(home),
        ca_bundle=Path(data["ca_bundle"]) if data.get("ca_bundle") else None,
        interval=float(data.get("interval", 60.0)),
        timeout=float(data.get("timeout", 20.0)),
        deadline=float(data.get("deadline", 60.0)),
        insecure_http=insecure,
        batch=data.get("batch", BATCH_DEFAULT),
    )


def save_config(config: SyncConfig, home: Path | None = None) -> Path:
    from certs.fsio import atomic_write

    base = home if home is not None else paths.home()
    base.mkdir(parents=True, exist_ok=True)
    path = base / CONFIG_NAME
    try:
        text = config.to_toml().encode("utf-8")
    except UnicodeEncodeError as e:  # a path that is not valid UTF-8 cannot be written to TOML
        raise SyncConfigError(f"cannot save {path}: a setting is not valid UTF-8 ({e.reason})") from e
    atomic_write(path, text, mode=0o600)
    return path


def write_token(path: Path, token: str) -> None:
    """Store a token (mode 0600) so that ``token_file`` can point at it."""
    from certs.fsio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write(path, token.strip().encode("ascii") + b"\n", mode=0o600)
