"""Printing certificates and labels through CUPS (``lp``), and making a record's label.

Every print job is one ``lp`` command run by the command runner (argv list, no shell), to the printer
the settings name (``[station] printer`` for certificates and reports, ``label_printer`` for labels;
empty: CUPS's default destination).  ``lp`` answers ``request id is QUEUE-12 (1 file(s))``: the
request id is returned so the screen can say which job to look for.  Labels are PDFs of
:data:`certs.label.LABEL_SIZE_MM` written to ``$TABULA_HOME/labels/<id>.pdf`` (not beside the
certificates: ``station verify DIR`` would read them as broken certificates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from certs.canonical import parse_json
from certs.destruction import DestructionRecord
from certs.errors import CertError
from certs.jws import TYP_DESTRUCTION, parse_envelope
from certs.model import Certificate
from host.fsio import atomic_write
from host.runner import Runner
from station.errors import StationError

LABELS = "labels"
_REQUEST = re.compile(r"request id is (\S+)")


class PrintError(StationError):
    """A document could not be handed to CUPS."""

    hint = "check the printer's name in the settings (s) and that it is on (lpstat -p lists the printers)"


@dataclass(frozen=True)
class Printed:
    path: Path
    request: str  # CUPS's request id, e.g. "Brother_QL-12"


def print_file(
    path: Path, runner: Runner, *, printer: str = "", title: str = "", fit: bool = False
) -> Printed:
    """Send ``path`` (a PDF) to ``printer`` (CUPS's default when empty) with ``lp``."""
    argv = ["lp"]
    if printer:
        argv += ["-d", printer]
    if title:
        argv += ["-t", title]
    if fit:
        argv += ["-o", "fit-to-page"]
    argv += ["--", str(path)]
    result = runner.run(argv, timeout=60, mutating=True)
    if not result.ok:
        why = (result.stderr or result.stdout).strip().splitlines()
        raise PrintError(
            f"lp could not print {path.name}: {why[-1] if why else f'exit code {result.returncode}'}"
        )
    m = _REQUEST.search(result.stdout)
    return Printed(path, m.group(1) if m else "")


def read_record(path: Path) -> tuple[Certificate | DestructionRecord, str]:
    """The signed record of a ``<id>.json`` file the station wrote, and its SHA-256 (not verified here)."""
    try:
        env = parse_envelope(path.read_bytes())
        payload = parse_json(env.payload_bytes, str(path))
        record: Certificate | DestructionRecord = (
            DestructionRecord.from_dict(payload)
            if env.typ == TYP_DESTRUCTION
            else Certificate.from_dict(payload)
        )
    except (CertError, OSError) as exc:
        raise PrintError(f"{path} is not a signed record Tabula can read: {exc}") from exc
    return record, env.digest


def make_label(signed: Path, home: Path, *, lang: str, url: str = "") -> Path:
    """Write (or rewrite) the label of the signed record ``signed``; its path."""
    record, digest = read_record(signed)
    directory = home / LABELS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.certificate_id}.pdf"
    # Start-up time: reportlab is only loaded when a label is drawn (the TUI imports this module at start).
    from certs.label import render_label

    atomic_write(path, render_label(record, digest, lang=lang, url=url))
    return path


def signed_of(paths: list[str]) -> Path | None:
    """The signed JSON among a job's certificate files."""
    for p in paths:
        if p.endswith(".json"):
            return Path(p)
    return None


def pdf_of(paths: list[str]) -> Path | None:
    for p in paths:
        if p.endswith(".pdf"):
            return Path(p)
    return None


def printers_of(settings_doc: dict[str, object]) -> tuple[str, str]:
    """(document printer, label printer) from the settings document (``[station]`` table)."""
    station = settings_doc.get("station", {})
    if not isinstance(station, dict):
        return "", ""
    printer = str(station.get("printer", "") or "")
    return printer, str(station.get("label_printer", "") or printer)
