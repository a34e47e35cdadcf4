"""Where Tabula keeps its certificates and keys, and crash-safe file writes.

``TABULA_HOME`` (see :func:`host.paths.home`) holds:

* ``keys/``  the station key (``station.key``, mode 0600, never printed, never synced), its public half,
  the station identity, the certificate sequence state and, optionally, an organisation key;
* ``certs/`` the signed certificates (``<id>.json``) and their PDFs (``<id>.pdf``);
* ``trust/`` the default trust store used by ``station verify`` (public keys and endorsements).

The home directory and the atomic write are the host layer's (:mod:`host.paths`, :mod:`host.fsio`):
one copy, so ``station keys`` and ``station erase`` always agree on where the keys are.
"""

from __future__ import annotations

from pathlib import Path

from host import paths
from host.fsio import atomic_write, ensure_private_dir, fsync_dir

__all__ = [
    "atomic_write",
    "default_cert_dir",
    "default_key_dir",
    "default_trust_dir",
    "ensure_private_dir",
    "fsync_dir",
    "tabula_home",
]


def tabula_home() -> Path:
    return paths.home()


def default_key_dir() -> Path:
    return paths.keys_dir()


def default_cert_dir() -> Path:
    return paths.certs_dir()


def default_trust_dir() -> Path:
    return paths.trust_dir()
