"""Who erases: the technician's name and organisation that every certificate names.

NIST SP 800-88 (Appendix G) asks for the name of the person who sanitized; a certificate never says
"-" there.  The name comes, first found wins, from:

1. the command line (``station erase --technician NAME --organisation ORG``);
2. the station's settings (``[certificate] technician`` / ``organisation`` in ``settings.toml``, which
   the TUI asks for at first start and changes with ``s``);
3. the live image's boot parameters ``tabula.technician=`` / ``tabula.org=`` (exported to the session
   as ``TABULA_TECHNICIAN`` / ``TABULA_ORG`` by ``station autorun --print-env``).

``station erase`` refuses to start without a name (nothing is written).  ``station autorun``, the
unattended bench mode, names :data:`UNATTENDED` when nobody was given, so its certificates still say
who (what) did it; the demo presets a demonstration technician.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TECHNICIAN_ENV = "TABULA_TECHNICIAN"
ORGANISATION_ENV = "TABULA_ORG"
#: The person of an unattended run's certificates when no technician was named.
UNATTENDED = "unattended bench (station autorun)"


@dataclass(frozen=True)
class Who:
    technician: str
    organisation: str

    def operator(self) -> dict[str, str]:
        """The job plan's operator fields (the certificate's person when the settings have none)."""
        out = {"name": self.technician, "organisation": self.organisation}
        return {k: v for k, v in out.items() if v}


def from_settings(path: Path) -> Who:
    """The technician and organisation a settings file names ('' when absent or unreadable)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return Who("", "")
    cert = doc.get("certificate", {})
    if not isinstance(cert, dict):
        return Who("", "")
    return Who(str(cert.get("technician", "")).strip(), str(cert.get("organisation", "")).strip())


def from_environment(environ: Mapping[str, str] | None = None) -> Who:
    env = os.environ if environ is None else environ
    return Who(env.get(TECHNICIAN_ENV, "").strip(), env.get(ORGANISATION_ENV, "").strip())


def who(
    technician: str | None,
    organisation: str | None,
    settings: Path,
    environ: Mapping[str, str] | None = None,
) -> Who:
    """The technician and organisation, from the command line, the settings, then the boot parameters."""
    saved = from_settings(settings)
    boot = from_environment(environ)
    return Who(
        (technician or "").strip() or saved.technician or boot.technician,
        (organisation or "").strip() or saved.organisation or boot.organisation,
    )
