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
* each destruction record becomes an ``ErasePhysical`` action on its drive (``method`` ``Shred``
  when the drive was shredded: DeviceHub knows only Shred and Disintegration; other methods are named
  in ``description``), never an erasure;
* ``tabula`` on each action links back to the signed record: certificate id, SHA-256 and station.

:func:`snapshot` takes the device itself when the hub knows it (a registered device of a lot:
:mod:`hub.devicehub` gives its type, identity and actions).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from certs.destruction import DestructionRecord
from certs.jws import parse_envelope
from certs.model import Certificate, Media
from hub.db import CertificateRow
from hub.service import deterministic_uuid

SOFTWARE = "Tabula"
VERSION = "0.1.0"


def certificate_of(row: CertificateRow) -> Certificate:
    env = parse_envelope(row.body)
    return Certificate.from_dict(json.loads(env.payload_bytes))


def record_of(row: CertificateRow) -> Certificate | DestructionRecord:
    """The signed record a stored row holds (certificate, failure report or destruction record)."""
    env = parse_envelope(row.body)
    payload = json.loads(env.payload_bytes)
    return (
        DestructionRecord.from_dict(payload) if row.kind == "destruction" else Certificate.from_dict(payload)
    )


def physical_action(row: CertificateRow, rec: DestructionRecord) -> dict[str, Any]:
    x = rec.destruction
    action: dict[str, Any] = {
        "type": "ErasePhysical",
        "severity": "Info",
        "startTime": x.destroyed_at,
        "endTime": x.destroyed_at,
        "description": f"physically destroyed ({x.method}) after the failed erasure job {rec.failed_job.job_id}; "
        "never erased",
        "tabula": {
            "certificate_id": row.certificate_id,
            "sha256": row.digest,
            "kind": "destruction",
            "outcome": "destroyed",
            "station": rec.station.id,
            "sequence": rec.station.sequence,
        },
    }
    if x.method == "shred":
        action["method"] = "Shred"
    return action


def _component(records: list[tuple[CertificateRow, Certificate | DestructionRecord]]) -> dict[str, Any]:
    records.sort(key=lambda rc: rc[1].issued_at)
    certs = [c for _, c in records if isinstance(c, Certificate)]
    media = certs[-1].media if certs else records[-1][1].media
    rotational = media.rotational if isinstance(media, Media) else media.media_type == "hdd"
    size = media.accessible_bytes if isinstance(media, Media) else media.size_bytes
    return {
        "type": "HardDrive" if rotational else "SolidStateDrive",
        "serialNumber": media.serial,
        "model": media.model,
        "manufacturer": media.manufacturer,
        "size": size // 1_000_000,
        "interface": media.interface,
        "actions": [
            erase_action(r, c) if isinstance(c, Certificate) else physical_action(r, c) for r, c in records
        ],
    }


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


def snapshot(
    rows: list[CertificateRow], asset_number: str, device: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One Snapshot for the machine ``asset_number`` from its signed records (any order); ``device``
    replaces the bare ``Computer`` when the hub knows the device (type, identity, its actions)."""
    by_drive: dict[str, list[tuple[CertificateRow, Certificate | DestructionRecord]]] = {}
    for row in rows:
        rec = record_of(row)
        key = rec.media.serial or rec.media.wwn or row.certificate_id
        by_drive.setdefault(key, []).append((row, rec))
    ids = sorted(r.certificate_id for r in rows)
    return {
        "type": "Snapshot",
        "uuid": deterministic_uuid("snapshot", asset_number, *ids),
        "software": SOFTWARE,
        "version": VERSION,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "device": device or {"type": "Computer", "serialNumber": None, "tag": asset_number, "actions": []},
        "components": [_component(records) for records in by_drive.values()],
    }
