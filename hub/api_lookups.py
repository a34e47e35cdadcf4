"""Routes an organisation's stations use (station token, results limited to its organisation):
search by serial / asset number / station, a station's chain, a machine's DeviceHub snapshot."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import lots
from hub.devicehub import device_snapshot
from hub.errors import HubError, NotFound
from hub.http import authed
from hub.service import Hub, summary
from hub.snapshot import snapshot

_TERMS = ("serial", "asset_number", "station")


def _limit(value: str | None) -> int:
    """``limit``: 1..500 results (default 100), newest first within each station."""
    if value is None:
        return 100
    if not value.isdigit() or not 1 <= int(value[:4]) <= 500 or len(value) > 3:
        raise HubError("limit is a number from 1 to 500", code="bad_limit")
    return int(value)


def routes(hub: Hub) -> list[Route]:
    async def search(request: Request) -> Response:
        station = await authed(hub, request)
        q = request.query_params
        if not any(q.get(k) for k in _TERMS):
            raise HubError("search by serial, asset_number or station", code="missing_query")

        limit = _limit(q.get("limit"))

        def run() -> list[dict[str, Any]]:
            found = hub.search(
                station.organisation_id,
                serial=q.get("serial"),
                asset_number=q.get("asset_number"),
                station=q.get("station"),
                limit=limit,
            )
            return [summary(f) for f in found]

        return JSONResponse({"certificates": await run_in_threadpool(run)})

    async def station_chain(request: Request) -> Response:
        station = await authed(hub, request)
        report = await run_in_threadpool(
            hub.chain_report, station.organisation_id, request.path_params["station_id"]
        )
        return JSONResponse(report)

    async def machine_snapshot(request: Request) -> Response:
        station = await authed(hub, request)
        asset = request.path_params["asset_number"]
        found = await run_in_threadpool(hub.search, station.organisation_id, asset_number=asset)
        rows = [f.row for f in found if f.row.redacted_at is None]
        try:  # a registered device of a lot: its type, identity and events too (hub.devicehub)
            _, state = await run_in_threadpool(lots.device_view, hub, station.organisation_id, asset)
        except NotFound:
            if not rows:
                raise NotFound(
                    f"no certificate for asset number {asset[:200]!r} in your organisation"
                ) from None
            return JSONResponse(await run_in_threadpool(snapshot, rows, asset))
        return JSONResponse(await run_in_threadpool(device_snapshot, state, rows))

    return [
        Route("/api/v1/certificates", search),
        Route("/api/v1/stations/{station_id}", station_chain),
        Route("/api/v1/machines/{asset_number}/snapshot", machine_snapshot),
    ]
