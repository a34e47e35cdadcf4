"""Export a machine's erasure record as an eReuse DeviceHub ``Snapshot`` (JSON).

Mapping (documented in hub/README.md):

* the machine (``device``) is identified by its asset number (property number); Tabula erases
  drives, not whole computers, so the device is ``{"type": "Computer", "serialNumber": null,
  "tag": <asset number>}`` and carries no action of its own;
* each drive is a component ``HardDrive`` (rotational) or ``SolidStateDrive`` with ``serialNumber``,
  ``model``, ``manufacturer`` and ``size`` in MB (10^6 bytes, as DeviceHub counts), from the newest
  certificate of that drive;
* each certificate becomes one erase action on its drive: ``EraseSectors`` for a certified erasure
  whose every byte was read back (full verification), ``EraseBasic`` otherwise (sampled verification,
  or a failure report); ``severity`` is ``Info`` for a certified erasure and ``Error`` for a failure
  report; ``startTime``/``endTime`` come from the job; ``standards`` lists ``NIST SP 800-88 Clear``
  when Clear was achieved;
* each overwrite pass is a step: ``StepZero`` for a pass of zeros, ``StepRandom`` for any other
  pattern (random or a fixed non-zero byte: DeviceHub has no step type for fixed patterns, the pass's
  pattern is kept in Tabula's certificate); firmware steps (sanitize, secure erase) have no DeviceHub
  step type and are left out of ``steps`` (the action's ``description`` names them);
* ``tabula`` on each action links back to the signed record: certificate id, SHA-256 and station.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from certs.jws import parse_envelope
from certs.model import Certificate
from hub.db import CertificateRow
from hub.service import deterministic_uuid

SOFTWARE = "Tabula"
VERSION = "0.1.0"


def certificate_of(row: CertificateRow) -> Certificate:
    env = parse_envelope(row.body)
    return Certificate.from_dict(json.loads(env.payload_bytes))


def _step(step: Any) -> dict[str, Any] | None:
    if step.kind != "overwrite" or step.pattern is None:
        return None
    zero = step.pattern.kind == "bytes" and set(step.pattern.hex or "") == {"0"}
    return {
        "type": "StepZero" if zero else "StepRandom",
        "severity": "Info" if step.completed and not step.bad_ranges else "Error",
        "startTime": step.started_at,
        "endTime": step.finished_at,
    }


def erase_action(row: CertificateRow, cert: Certificate) -> dict[str, Any]:
    full = cert.verification.mode == "full" and cert.verification.result == "passed"
    firmware = [s.command for s in cert.sanitization.steps if s.kind == "firmware"]
    description = f"{cert.sanitization.method}: {cert.sanitization.method_details}"
    if firmware:
        description += "; firmware steps: " + ", ".join(str(c) for c in firmware)
    steps = [s for s in (_step(x) for x in cert.sanitization.steps) if s is not None]
    return {
        "type": "EraseSectors" if cert.success and full else "EraseBasic",
        "severity": "Info" if cert.success else "Error",
        "startTime": cert.job.started_at,
        "endTime": cert.job.finished_at,
        "standards": ["NIST SP 800-88 Clear"] if cert.sanitization.level_achieved == "clear" else [],
        "description": description,
        "steps": steps,
        "tabula": {
            "certificate_id": row.certificate_id,
            "sha256": row.digest,
            "kind": cert.kind,
            "outcome": cert.result.outcome,
            "station": cert.station.id,
            "sequence": cert.station.sequence,
        },
    }


def snapshot(rows: list[CertificateRow], asset_number: str) -> dict[str, Any]:
    """One Snapshot for the machine ``asset_number`` from its certificates (any order)."""
    by_drive: dict[str, list[tuple[CertificateRow, Certificate]]] = {}
    for row in rows:
        if row.kind == "destruction":
            continue  # not an erasure (hub.devicehub exports destructions with the device's events)
        cert = certificate_of(row)
        key = cert.media.serial or cert.media.wwn or row.certificate_id
        by_drive.setdefault(key, []).append((row, cert))
    components = []
    for certs in by_drive.values():
        certs.sort(key=lambda rc: rc[1].issued_at)
        newest = certs[-1][1].media
        components.append(
            {
                "type": "HardDrive" if newest.rotational else "SolidStateDrive",
                "serialNumber": newest.serial,
                "model": newest.model,
                "manufacturer": newest.manufacturer,
                "size": newest.accessible_bytes // 1_000_000,
                "interface": newest.interface,
                "actions": [erase_action(r, c) for r, c in certs],
            }
        )
    ids = sorted(r.certificate_id for r in rows)
    return {
        "type": "Snapshot",
        "uuid": deterministic_uuid("snapshot", asset_number, *ids),
        "software": SOFTWARE,
        "version": VERSION,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": {
            "type": "Computer",
            "serialNumber": None,
            "tag": asset_number,
            "actions": [],
        },
        "components": components,
    }
