"""Where Tabula keeps its state, and crash-safe file writes.

``TABULA_HOME`` (default ``/var/lib/tabula`` as root, else ``~/.local/state/tabula``) holds:

* ``keys/``  the station key (``station.key``, mode 0600, never printed, never synced), its public half,
  the station identity, the certificate sequence state and, optionally, an organisation key;
* ``certs/`` the signed certificates (``<id>.json``) and their PDFs (``<id>.pdf``);
* ``trust/`` the default trust store used by ``station verify`` (public keys and endorsements).
"""

from __future__ import annotations

import os
from pathlib import Path


def tabula_home() -> Path:
    env = os.environ.get("TABULA_HOME")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/tabula")
    return Path.home() / ".local" / "state" / "tabula"


def default_key_dir() -> Path:
    return tabula_home() / "keys"


def default_cert_dir() -> Path:
    return tabula_home() / "certs"


def default_trust_dir() -> Path:
    return tabula_home() / "trust"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, whole.

    tmp file in the same directory + fsync + rename + fsync of the directory.  With ``exclusive``,
    an existing ``path`` is never replaced (``FileExistsError``), checked atomically by ``link``.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # fails with FileExistsError instead of replacing
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 for the last component."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
