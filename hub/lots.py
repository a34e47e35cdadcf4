"""Donation lots in the database: create, close, register devices, record events, read progress.

Who may do what (hub/README.md, "Donation lots"):

* an organisation's **staff** (staff token, or a coordinator token with an organisation) create and
  close its lots, hand out and revoke the donor's link, and see the donor contact;
* its **stations** and its staff register devices, record events (received, repaired, outcome) and
  look lots and devices up (a station checks the lot and asset number typed at its start);
* nobody sees another organisation's lots.

A device's progress is computed (:mod:`hub.lotfacts`) from its events and from the reports and
signed records that carry its asset number in its organisation.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.admin import token_hash
from hub.db import (
    CertificateRow,
    Device,
    DeviceEvent,
    Lot,
    Organisation,
    ReportRow,
    StaffInfo,
    Station,
    StationInfo,
)
from hub.errors import Conflict, Forbidden, HubError, NotFound
from hub.lotfacts import (
    CONTACT_MAX,
    DETAIL_MAX,
    DEVICE_KINDS,
    DONOR_KINDS,
    DONOR_NAME_MAX,
    OUTCOMES,
    DeviceFacts,
    DeviceState,
    EventFact,
    InputProblem,
    LotCounts,
    RecordFact,
    ReportFact,
    choice,
    device_state,
    iso_date,
    iso_time,
    lot_counts,
    outcome_detail,
    reference,
    report_fact,
    text_field,
)
from hub.staff import staff_organisation

Actor = StationInfo | StaffInfo
_CHUNK = 500  # asset numbers per IN (...) query


class Hub(Protocol):
    def session(self) -> Session: ...

    def read_session(self) -> Session: ...


class BadInput(HubError):
    status = 422
    code = "invalid_input"


def checked(problem: InputProblem) -> BadInput:
    return BadInput(f"{problem.name}: {problem.message}", code=f"bad_{problem.name}")


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def actor_name(actor: Actor) -> str:
    return f"station {actor.station_id}" if isinstance(actor, StationInfo) else f"staff {actor.name}"


def organisation_of(actor: Actor) -> int:
    return actor.organisation_id if isinstance(actor, StationInfo) else staff_organisation(actor)


def staff_only(actor: Actor, what: str) -> int:
    if isinstance(actor, StationInfo):
        raise Forbidden(f"{what} needs a staff token (station-hub staff add)", code="wrong_role")
    return staff_organisation(actor)


# --- lots ------------------------------------------------------------------------------------------


def lot_json(lot: Lot, *, contact: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": lot.id,
        "reference": lot.reference,
        "donor_name": lot.donor_name,
        "donor_kind": lot.donor_kind,
        "received_on": lot.received_on,
        "closed_at": iso(lot.closed_at),
        "donor_link": lot.donor_token_sha256 is not None,
    }
    if contact:
        out["contact"] = lot.contact
        out["contact_erased_at"] = iso(lot.contact_erased_at)
    return out


def create_lot(hub: Hub, actor: Actor, doc: Mapping[str, Any]) -> Lot:
    org_id = staff_only(actor, "creating a lot")
    try:
        lot = Lot(
            organisation_id=org_id,
            reference=reference(doc.get("reference")),
            donor_name=text_field(doc, "donor_name", DONOR_NAME_MAX),
            donor_kind=choice(doc, "donor_kind", DONOR_KINDS),
            received_on=iso_date(doc.get("received_on"), "received_on"),
            contact=text_field(doc, "contact", CONTACT_MAX, required=False) or None,
        )
    except InputProblem as p:
        raise checked(p) from None
    try:
        with hub.session() as s, s.begin():
            if _lot_by_ref(s, org_id, lot.reference) is not None:
                raise Conflict(
                    f"lot {lot.reference!r} already exists in your organisation", code="lot_exists"
                )
            s.add(lot)
    except IntegrityError:
        raise Conflict(
            f"lot {lot.reference!r} already exists in your organisation", code="lot_exists"
        ) from None
    return lot


def _lot_by_ref(s: Session, org_id: int, ref: str) -> Lot | None:
    return s.scalar(select(Lot).where(Lot.organisation_id == org_id, Lot.reference == ref))


def find_lot(hub: Hub, org_id: int, *, lot_id: int | None = None, ref: str | None = None) -> Lot:
    with hub.read_session() as s:
        if lot_id is not None:
            lot = s.get(Lot, lot_id)
            lot = lot if lot is not None and lot.organisation_id == org_id else None
        else:
            lot = _lot_by_ref(s, org_id, ref or "")
    if lot is None:
        raise NotFound(f"no lot {ref or lot_id!r} in your organisation", code="unknown_lot")
    return lot


def device_count(hub: Hub, lot_id: int) -> int:
    with hub.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(Device).where(Device.lot_id == lot_id)) or 0)


def close_lot(hub: Hub, actor: Actor, lot_id: int) -> Lot:
    org_id = staff_only(actor, "closing a lot")
    with hub.session() as s, s.begin():
        lot = s.get(Lot, lot_id)
        if lot is None or lot.organisation_id != org_id:
            raise NotFound(f"no lot {lot_id} in your organisation", code="unknown_lot")
        if lot.closed_at is None:
            lot.closed_at = datetime.now(UTC)
    return lot


def new_donor_link(hub: Hub, actor: Actor, lot_id: int) -> tuple[Lot, str]:
    """A new capability token for the lot's donor page (256 random bits; the hub keeps its SHA-256).
    It replaces the previous one, which stops working."""
    return mint_donor_token(hub, staff_only(actor, "a donor link"), lot_id)


def mint_donor_token(hub: Hub, org_id: int, lot_id: int) -> tuple[Lot, str]:
    token = secrets.token_urlsafe(32)
    with hub.session() as s, s.begin():
        lot = s.get(Lot, lot_id)
        if lot is None or lot.organisation_id != org_id:
            raise NotFound(f"no lot {lot_id} in your organisation", code="unknown_lot")
        lot.donor_token_sha256 = token_hash(token)
    return lot, token


def revoke_donor_link(hub: Hub, actor: Actor, lot_id: int) -> Lot:
    org_id = staff_only(actor, "a donor link")
    with hub.session() as s, s.begin():
        lot = s.get(Lot, lot_id)
        if lot is None or lot.organisation_id != org_id:
            raise NotFound(f"no lot {lot_id} in your organisation", code="unknown_lot")
        lot.donor_token_sha256 = None
    return lot


def lot_by_donor_token(hub: Hub, token: str) -> Lot | None:
    if not token or len(token) > 100:
        return None
    with hub.read_session() as s:
        return s.scalar(select(Lot).where(Lot.donor_token_sha256 == token_hash(token)))


def erase_contacts(hub: Hub, days: int, *, now: datetime | None = None) -> list[Lot]:
    """The retention rule: erase the donor contact of every lot closed ``days`` days ago or more."""
    if days < 0:
        raise HubError("the retention period is a number of days (0 or more)", code="bad_days")
    now = now or datetime.now(UTC)
    with hub.session() as s, s.begin():
        lots = list(
            s.scalars(
                select(Lot).where(
                    Lot.closed_at.is_not(None),
                    Lot.closed_at <= now - timedelta(days=days),
                    Lot.contact.is_not(None),
                )
            )
        )
        for lot in lots:
            lot.contact = None
            lot.contact_erased_at = now
    return lots


# --- devices and events ----------------------------------------------------------------------------


def _open_lot(s: Session, org_id: int, lot_id: int) -> Lot:
    lot = s.get(Lot, lot_id)
    if lot is None or lot.organisation_id != org_id:
        raise NotFound(f"no lot {lot_id} in your organisation", code="unknown_lot")
    if lot.closed_at is not None:
        raise Conflict(f"lot {lot.reference!r} is closed", code="lot_closed")
    return lot


def _device_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return {
            "asset_number": text_field(doc, "asset_number", 200),
            "kind": choice(doc, "kind", DEVICE_KINDS),
            "manufacturer": text_field(doc, "manufacturer", 512, required=False),
            "model": text_field(doc, "model", 512, required=False),
            "serial": text_field(doc, "serial", 512, required=False),
        }
    except InputProblem as p:
        raise checked(p) from None


def register_device(hub: Hub, actor: Actor, lot_id: int, doc: Mapping[str, Any]) -> tuple[Device, bool]:
    """Register a device in a lot (with its "received" event); the same registration again is 200."""
    org_id = organisation_of(actor)
    fields = _device_fields(doc)
    now = datetime.now(UTC)
    try:
        at = iso_time(doc.get("received_at"), "received_at", now)
    except InputProblem as p:
        raise checked(p) from None
    try:
        with hub.session() as s, s.begin():
            lot = _open_lot(s, org_id, lot_id)
            found = _device(s, org_id, fields["asset_number"])
            if found is not None:
                return _same_device(found, lot, fields), False
            device = Device(organisation_id=org_id, lot_id=lot.id, **fields)
            s.add(device)
            s.flush()
            s.add(
                DeviceEvent(device_id=device.id, kind="received", at=at, detail="", actor=actor_name(actor))
            )
    except IntegrityError:
        raise Conflict("this asset number was registered at the same time; look it up", code="busy") from None
    return device, True


def _same_device(found: Device, lot: Lot, fields: Mapping[str, Any]) -> Device:
    if found.lot_id != lot.id:
        raise Conflict(
            f"asset number {found.asset_number!r} is already registered in another lot",
            code="asset_in_other_lot",
        )
    if found.kind != fields["kind"]:
        raise Conflict(
            f"asset number {found.asset_number!r} is registered as a {found.kind}", code="asset_kind"
        )
    return found


def _device(s: Session, org_id: int, asset: str) -> Device | None:
    return s.scalar(select(Device).where(Device.organisation_id == org_id, Device.asset_number == asset))


def _event_fields(doc: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    try:
        kind = choice(doc, "kind", ("repaired", "outcome"))
        detail = text_field(doc, "detail", DETAIL_MAX, required=False)
        outcome = choice(doc, "outcome", OUTCOMES) if kind == "outcome" else None
        if outcome is not None:
            detail = outcome_detail(outcome, detail)
        return {
            "kind": kind,
            "outcome": outcome,
            "detail": detail or "",
            "at": iso_time(doc.get("at"), "at", now),
        }
    except InputProblem as p:
        raise checked(p) from None


def record_event(hub: Hub, actor: Actor, doc: Mapping[str, Any]) -> tuple[Device, DeviceEvent]:
    """Record that a device was repaired, or its outcome (the newest outcome is the device's)."""
    org_id = organisation_of(actor)
    try:
        asset = text_field(doc, "asset_number", 200)
    except InputProblem as p:
        raise checked(p) from None
    fields = _event_fields(doc, datetime.now(UTC))
    with hub.session() as s, s.begin():
        device = _device(s, org_id, asset or "")
        if device is None:
            raise NotFound(
                f"no device with asset number {asset!r} in your organisation", code="unknown_asset"
            )
        _open_lot(s, org_id, device.lot_id)
        event = DeviceEvent(device_id=device.id, actor=actor_name(actor), **fields)
        s.add(event)
    return device, event


# --- progress --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotView:
    lot: Lot
    organisation: str
    states: tuple[DeviceState, ...]
    counts: LotCounts


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _rows(s: Session, org_id: int, assets: Sequence[str]) -> dict[str, list[CertificateRow]]:
    out: dict[str, list[CertificateRow]] = {}
    for part in _chunks(assets):
        rows = s.execute(
            select(CertificateRow)
            .join(Station, Station.id == CertificateRow.station_pk)
            .where(Station.organisation_id == org_id, CertificateRow.asset_number.in_(part))
        ).scalars()
        for r in rows:
            out.setdefault(r.asset_number, []).append(r)
    return out


def _records(s: Session, org_id: int, assets: Sequence[str]) -> dict[str, list[RecordFact]]:
    return {a: [record_fact(r) for r in rows] for a, rows in _rows(s, org_id, assets).items()}


def record_rows(hub: Hub, org_id: int, assets: Sequence[str]) -> dict[str, list[CertificateRow]]:
    """The stored signed records of these asset numbers in the organisation, whose signed copy is
    still held (personal data not removed)."""
    with hub.read_session() as s:
        found = _rows(s, org_id, assets)
    return {a: [r for r in rows if r.redacted_at is None] for a, rows in found.items()}


def record_fact(r: CertificateRow) -> RecordFact:
    return RecordFact(
        record_id=r.certificate_id,
        kind=r.kind,
        success=r.success,
        level=r.level_achieved,
        serial=r.serial or r.wwn,
        model=r.model,
        manufacturer=r.manufacturer,
        issued_at=r.issued_at,
        lot=r.lot,
        sha256=r.digest,
        result=r.outcome,
    )


def _reports(s: Session, org_id: int, assets: Sequence[str]) -> dict[str, list[ReportFact]]:
    out: dict[str, list[ReportFact]] = {}
    for part in _chunks(assets):
        rows = s.execute(
            select(ReportRow.report_id, ReportRow.body, ReportRow.received_at, ReportRow.asset_number)
            .join(Station, Station.id == ReportRow.station_pk)
            .where(Station.organisation_id == org_id, ReportRow.asset_number.in_(part))
        ).all()
        for rid, body, received, asset in rows:
            fact = report_fact(rid, bytes(body), iso(received) or "")
            if fact is not None and asset is not None:
                out.setdefault(asset, []).append(fact)
    return out


def _events(s: Session, device_ids: Sequence[int]) -> dict[int, list[EventFact]]:
    out: dict[int, list[EventFact]] = {}
    for i in range(0, len(device_ids), _CHUNK):
        rows = s.scalars(select(DeviceEvent).where(DeviceEvent.device_id.in_(device_ids[i : i + _CHUNK])))
        for e in rows:
            out.setdefault(e.device_id, []).append(
                EventFact(e.kind, iso(e.at) or "", e.outcome, e.detail, e.actor)
            )
    return out


def device_facts(d: Device) -> DeviceFacts:
    return DeviceFacts(d.asset_number, d.kind, d.manufacturer, d.model, d.serial, iso(d.created_at) or "")


def states_of(
    s: Session, org_id: int, lot_refs: Mapping[int, str], devices: Sequence[Device]
) -> list[DeviceState]:
    """The state of each device (``lot_refs``: lot id -> reference), with a few queries in all."""
    assets = [d.asset_number for d in devices]
    records, reports = _records(s, org_id, assets), _reports(s, org_id, assets)
    events = _events(s, [d.id for d in devices])
    return [
        device_state(
            device_facts(d),
            lot_refs[d.lot_id],
            events.get(d.id, []),
            records.get(d.asset_number, []),
            reports.get(d.asset_number, []),
        )
        for d in devices
    ]


def lot_view(hub: Hub, lot: Lot) -> LotView:
    with hub.read_session() as s:
        devices = list(s.scalars(select(Device).where(Device.lot_id == lot.id).order_by(Device.asset_number)))
        org = s.get(Organisation, lot.organisation_id)
        states = states_of(s, lot.organisation_id, {lot.id: lot.reference}, devices)
    return LotView(lot, org.name if org else "?", tuple(states), lot_counts(states))


def device_view(hub: Hub, org_id: int, asset: str) -> tuple[Lot, DeviceState]:
    with hub.read_session() as s:
        device = _device(s, org_id, asset)
        if device is None:
            raise NotFound(
                f"no device with asset number {asset[:200]!r} in your organisation", code="unknown_asset"
            )
        lot = s.get(Lot, device.lot_id)
        assert lot is not None
        state = states_of(s, org_id, {lot.id: lot.reference}, [device])[0]
    return lot, state
