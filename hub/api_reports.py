"""Routes for diagnostics reports (station token): unsigned JSON, the id is the SHA-256 of the bytes."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.http import authed, read_body
from hub.ids import normalise_id
from hub.service import Hub


def routes(hub: Hub) -> list[Route]:
    async def put_report(request: Request) -> Response:
        station = await authed(hub, request)
        body = await read_body(request)
        report_id = normalise_id(request.path_params["report_id"])
        created = await run_in_threadpool(hub.ingest_report, station, report_id, body)
        return JSONResponse(
            {"report_id": report_id, "status": "stored" if created else "already_stored"},
            status_code=201 if created else 200,
        )

    return [Route("/api/v1/reports/{report_id}", put_report, methods=["PUT"])]
