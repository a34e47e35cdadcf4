"""Where the station keeps its state: jobs, certificates, keys, settings.

``TABULA_HOME`` overrides everything (tests, demo, the live image's persistence partition).
Otherwise ``/var/lib/tabula`` for root and ``~/.local/state/tabula`` for anyone else.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("TABULA_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/tabula")
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "tabula"


def jobs_dir() -> Path:
    return home() / "jobs"


def certs_dir() -> Path:
    return home() / "certs"


def keys_dir() -> Path:
    return home() / "keys"


def settings_file() -> Path:
    return home() / "settings.toml"


def trust_dir() -> Path:
    return home() / "trust"
