"""Where the station uploads to: ``$TABULA_HOME/sync.toml``, overridden by command-line options.

::

    url = "https://hub.example.org"        # the hub's base URL (https in production)
    token_file = "/var/lib/tabula/sync/token"   # the station's bearer token (mode 0600; default shown)
    ca_bundle = "/etc/tabula/hub-ca.pem"    # optional: CA certificate(s) to trust for the hub's TLS
    interval = 60                           # seconds between background drains
    timeout = 20                            # seconds per request

The token comes from ``station-hub enroll`` on the hub.  It is read from its file when needed and
never printed or logged.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from host import paths
from station.sync.errors import SyncConfigError

CONFIG_NAME = "sync.toml"


def default_token_file(home: Path | None = None) -> Path:
    return (home if home is not None else paths.home()) / "sync" / "token"


@dataclass(frozen=True)
class SyncConfig:
    url: str = ""
    token_file: Path | None = None
    ca_bundle: Path | None = None
    interval: float = 60.0
    timeout: float = 20.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("https://", "http://")):
            raise SyncConfigError(f"the hub URL must start with https:// (or http://), got {self.url!r}")
        if self.interval <= 0 or self.timeout <= 0:
            raise SyncConfigError("interval and timeout must be positive")

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
    ) -> SyncConfig:
        changes: dict[str, Any] = {}
        if url:
            changes["url"] = url
        if token_file is not None:
            changes["token_file"] = token_file
        if ca_bundle is not None:
            changes["ca_bundle"] = ca_bundle
        return replace(self, **changes)

    def to_toml(self) -> str:
        lines = [f'url = "{self.url}"']
        if self.token_file is not None:
            lines.append(f'token_file = "{self.token_file}"')
        if self.ca_bundle is not None:
            lines.append(f'ca_bundle = "{self.ca_bundle}"')
        lines.append(f"interval = {self.interval:g}")
        lines.append(f"timeout = {self.timeout:g}")
        return "\n".join(lines) + "\n"


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
    known = {"url", "token_file", "ca_bundle", "interval", "timeout"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SyncConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    try:
        return SyncConfig(
            # The live image's kernel parameter tabula.sync=URL arrives as TABULA_SYNC: it names the
            # hub when sync.toml does not (the persistence partition's file wins once saved).
            url=str(data.get("url", "")) or os.environ.get("TABULA_SYNC", ""),
            token_file=Path(data["token_file"]) if "token_file" in data else default_token_file(home),
            ca_bundle=Path(data["ca_bundle"]) if data.get("ca_bundle") else None,
            interval=float(data.get("interval", 60.0)),
            timeout=float(data.get("timeout", 20.0)),
        )
    except (TypeError, ValueError) as e:
        raise SyncConfigError(f"{path}: {e}") from e


def save_config(config: SyncConfig, home: Path | None = None) -> Path:
    from certs.fsio import atomic_write

    base = home if home is not None else paths.home()
    base.mkdir(parents=True, exist_ok=True)
    path = base / CONFIG_NAME
    atomic_write(path, config.to_toml().encode("utf-8"), mode=0o600)
    return path


def write_token(path: Path, token: str) -> None:
    """Store a token (mode 0600) so that ``token_file`` can point at it."""
    from certs.fsio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write(path, token.strip().encode("ascii") + b"\n", mode=0o600)
