"""Routes for donation lots (station or staff token; hub/README.md, "Donation lots").

* ``POST /api/v1/lots`` (staff): create a lot; ``GET /api/v1/lots?reference=REF``: look one up (what
  a station checks when a technician types a lot reference); ``GET /api/v1/lots/{id}``: the lot
  with every device's progress; ``POST /api/v1/lots/{id}/close`` (staff);
* ``POST /api/v1/lots/{id}/donor-link`` (staff): a new capability link to the donor page (shown
  once; replaces the previous one); ``DELETE`` revokes it;
* ``POST /api/v1/lots/{id}/devices``: register a device (its "received" event);
* ``GET /api/v1/devices?asset_number=A``: a device's progress and lot;
* ``POST /api/v1/events``: record that a device was repaired, or its outcome.

Request bodies are JSON objects of at most 16 KiB; a wrong field is a 422 naming it.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import devicehub, lots
from hub.db import StaffInfo, StationInfo
from hub.errors import HubError
from hub.http import read_body
from hub.lotfacts import InputProblem, reference, storable
from hub.service import Hub

BODY_LIMIT = 16 * 1024
MAX_ID = 2**31 - 1  # lots.id is a 32-bit INTEGER on PostgreSQL
_PRIVATE = {"Cache-Control": "private, no-store"}


async def actor_of(hub: Hub, request: Request) -> StationInfo | StaffInfo:
    return await run_in_threadpool(hub.actor, request.headers.get("authorization"))


async def json_object(request: Request) -> dict[str, Any]:
    body = await read_body(request, BODY_LIMIT)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise lots.BadInput("the body is a JSON object", code="malformed") from None
    if not isinstance(doc, dict):
        raise lots.BadInput("the body is a JSON object", code="malformed")
    return doc


def lot_id(request: Request) -> int:
    raw = str(request.path_params["lot_id"])
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_ID:
        raise HubError("a lot id is a number (GET /api/v1/lots?reference=REF finds it)", code="bad_lot_id")
    return int(raw)


def view_json(view: lots.LotView, *, contact: bool) -> dict[str, Any]:
    return {
        "lot": lots.lot_json(view.lot, contact=contact),
        "organisation": view.organisation,
        "counts": view.counts.to_json(),
        "devices": [s.to_json() for s in view.states],
    }


def _lot_routes(hub: Hub) -> list[Route]:
    async def create(request: Request) -> Response:
        actor = await actor_of(hub, request)
        doc = await json_object(request)
        lot = await run_in_threadpool(lots.create_lot, hub, actor, doc)
        return JSONResponse(lots.lot_json(lot, contact=True), status_code=201, headers=_PRIVATE)

    async def lookup(request: Request) -> Response:
        actor = await actor_of(hub, request)
        try:
            ref = reference(request.query_params.get("reference"))
        except InputProblem as p:
            raise lots.checked(p) from None
        lot = await run_in_threadpool(lots.find_lot, hub, lots.organisation_of(actor), ref=ref)
        # Cheap on purpose: a station asks at every machine's start (the progress is GET /lots/{id}).
        devices = await run_in_threadpool(lots.device_count, hub, lot.id)
        return JSONResponse({"lot": lots.lot_json(lot, contact=False), "devices": devices}, headers=_PRIVATE)

    async def detail(request: Request) -> Response:
        actor = await actor_of(hub, request)
        lot = await run_in_threadpool(lots.find_lot, hub, lots.organisation_of(actor), lot_id=lot_id(request))
        view = await run_in_threadpool(lots.lot_view, hub, lot)
        return JSONResponse(view_json(view, contact=isinstance(actor, StaffInfo)), headers=_PRIVATE)

    async def devicehub_lot(request: Request) -> Response:
        actor = await actor_of(hub, request)
        org_id = lots.organisation_of(actor)
        lot = await run_in_threadpool(lots.find_lot, hub, org_id, lot_id=lot_id(request))
        view = await run_in_threadpool(lots.lot_view, hub, lot)
        rows = await run_in_threadpool(
            lots.record_rows, hub, org_id, [s.facts.asset_number for s in view.states]
        )
        return JSONResponse(await run_in_threadpool(devicehub.lot_export, view, rows), headers=_PRIVATE)

    async def close(request: Request) -> Response:
        actor = await actor_of(hub, request)
        lot = await run_in_threadpool(lots.close_lot, hub, actor, lot_id(request))
        return JSONResponse(lots.lot_json(lot, contact=True), headers=_PRIVATE)

    return [
        Route("/api/v1/lots", create, methods=["POST"]),
        Route("/api/v1/lots", lookup, methods=["GET"]),
        Route("/api/v1/lots/{lot_id}", detail, methods=["GET"]),
        Route("/api/v1/lots/{lot_id}/close", close, methods=["POST"]),
        Route("/api/v1/lots/{lot_id}/devicehub", devicehub_lot, methods=["GET"]),
    ]


def _donor_routes(hub: Hub) -> list[Route]:
    async def new_link(request: Request) -> Response:
        actor = await actor_of(hub, request)
        lot, token = await run_in_threadpool(lots.new_donor_link, hub, actor, lot_id(request))
        return JSONResponse(
            {"lot": lot.reference, "url": f"/donor/{token}", "token": token},
            status_code=201,
            headers=_PRIVATE,
        )

    async def revoke_link(request: Request) -> Response:
        actor = await actor_of(hub, request)
        lot = await run_in_threadpool(lots.revoke_donor_link, hub, actor, lot_id(request))
        return JSONResponse({"lot": lot.reference, "donor_link": False}, headers=_PRIVATE)

    return [
        Route("/api/v1/lots/{lot_id}/donor-link", new_link, methods=["POST"]),
        Route("/api/v1/lots/{lot_id}/donor-link", revoke_link, methods=["DELETE"]),
    ]


def _device_routes(hub: Hub) -> list[Route]:
    async def register(request: Request) -> Response:
        actor = await actor_of(hub, request)
        doc = await json_object(request)
        device, created = await run_in_threadpool(lots.register_device, hub, actor, lot_id(request), doc)
        return JSONResponse(
            {
                "asset_number": device.asset_number,
                "kind": device.kind,
                "status": "stored" if created else "already_stored",
            },
            status_code=201 if created else 200,
        )

    async def device(request: Request) -> Response:
        actor = await actor_of(hub, request)
        asset = request.query_params.get("asset_number") or ""
        if not asset.strip() or len(asset) > 200 or storable(asset) != asset:
            raise lots.BadInput("asset_number: 1 to 200 characters of text", code="bad_asset_number")
        lot, state = await run_in_threadpool(lots.device_view, hub, lots.organisation_of(actor), asset)
        return JSONResponse(
            {"lot": lots.lot_json(lot, contact=False), "device": state.to_json()}, headers=_PRIVATE
        )

    async def event(request: Request) -> Response:
        actor = await actor_of(hub, request)
        doc = await json_object(request)
        dev, ev = await run_in_threadpool(lots.record_event, hub, actor, doc)
        return JSONResponse(
            {
                "asset_number": dev.asset_number,
                "event": ev.kind,
                "outcome": ev.outcome,
                "at": lots.iso(ev.at),
            },
            status_code=201,
        )

    return [
        Route("/api/v1/lots/{lot_id}/devices", register, methods=["POST"]),
        Route("/api/v1/devices", device, methods=["GET"]),
        Route("/api/v1/events", event, methods=["POST"]),
    ]


def routes(hub: Hub) -> list[Route]:
    return [*_lot_routes(hub), *_donor_routes(hub), *_device_routes(hub)]
