"""eReuse DeviceHub interop for lots and device events (hub/README.md, "eReuse DeviceHub export").

* a registered device is exported as a DeviceHub device of its kind (``Laptop``, ``Desktop``,
  ``Server``, ``Smartphone``, ``Tablet``; a lone drive is a ``HardDrive``) with its asset number as
  ``tag``, make, model and serial, and its actions: ``ToRepair`` (diagnosed "repair"), ``Repair``
  (repaired), and its outcome: ``Donate`` (reused; the beneficiary category in ``description``,
  never a person), ``Sell`` (sold at a solidarity price), ``DisposeProduct`` (recycled through the
  named WEEE channel, or destroyed); its drives are the Snapshot's components (:mod:`hub.snapshot`);
* a lot is exported as a DeviceHub ``Lot``: its reference as ``name``, the donor's kind and the date
  received in ``description`` (never the donor's name: a household is a person), ``closed``, and
  one Snapshot per device.

DeviceHub's trade actions (Donate, Sell, DisposeProduct) carry the parties in DeviceHub itself; the
export gives what Tabula knows and ``tabula`` blocks that link back to the hub's records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hub.db import CertificateRow
from hub.lotfacts import DeviceState
from hub.lots import LotView, iso
from hub.service import deterministic_uuid
from hub.snapshot import SOFTWARE, VERSION, snapshot

DEVICE_TYPES = {
    "laptop": "Laptop",
    "desktop": "Desktop",
    "server": "Server",
    "phone": "Smartphone",
    "tablet": "Tablet",
    "drive": "HardDrive",
}
OUTCOME_ACTIONS = {
    "reused": "Donate",
    "sold": "Sell",
    "recycled": "DisposeProduct",
    "destroyed": "DisposeProduct",
}


def _action(kind: str, at: str, description: str, event: str) -> dict[str, Any]:
    return {
        "type": kind,
        "severity": "Info",
        "startTime": at,
        "endTime": at,
        "description": description,
        "tabula": {"event": event},
    }


def device_actions(state: DeviceState) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in state.timeline:
        event, at = item["event"], item["at"]
        if event == "diagnosed" and item.get("verdict") == "repair":
            out.append(_action("ToRepair", at, "diagnostics verdict: repair", event))
        elif event == "repaired":
            out.append(_action("Repair", at, item.get("detail") or "repaired", event))
        elif event == "outcome" and item.get("outcome") in OUTCOME_ACTIONS:
            what = f"{item['outcome']}" + (f": {item['detail']}" if item.get("detail") else "")
            out.append(_action(OUTCOME_ACTIONS[item["outcome"]], at, what, event))
    return out


def device_json(state: DeviceState) -> dict[str, Any]:
    return {
        "type": DEVICE_TYPES.get(state.facts.kind, "Computer"),
        "tag": state.facts.asset_number,
        "serialNumber": state.serial,
        "manufacturer": state.make,
        "model": state.model,
        "actions": device_actions(state),
        "tabula": {
            "lot": state.lot,
            "kind": state.facts.kind,
            "verdict": state.verdict,
            "data_cleared": state.data_cleared,
            "received_at": state.received_at,
        },
    }


def device_snapshot(state: DeviceState, rows: list[CertificateRow]) -> dict[str, Any]:
    return snapshot(rows, state.facts.asset_number, device_json(state))


def lot_export(view: LotView, rows: dict[str, list[CertificateRow]]) -> dict[str, Any]:
    lot = view.lot
    return {
        "type": "Lot",
        "uuid": deterministic_uuid("lot", str(lot.organisation_id), lot.reference),
        "name": lot.reference,
        "description": f"donation from a {lot.donor_kind.replace('_', ' ')}, received {lot.received_on}",
        "closed": lot.closed_at is not None,
        "software": SOFTWARE,
        "version": VERSION,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "devices": [device_snapshot(s, rows.get(s.facts.asset_number, [])) for s in view.states],
        "tabula": {
            "reference": lot.reference,
            "closed_at": iso(lot.closed_at),
            "counts": view.counts.to_json(),
        },
    }
