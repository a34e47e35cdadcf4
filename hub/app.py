"""The hub's HTTP interface (ASGI, Starlette): routes by section, errors, and the guard.

Sections (each a module with ``routes(hub)``): certificates (:mod:`hub.api_certificates`), reports
(:mod:`hub.api_reports`), lookups for an organisation's stations (:mod:`hub.api_lookups`), the public
keys, endorsements and revocations auditors need (:mod:`hub.api_keys`), the transparency log and the
stations' chain heads (:mod:`hub.api_log`) and the HTML pages (:mod:`hub.pages`).  :mod:`hub.http`
maps errors to answers; :mod:`hub.guard` adds security headers, rate limits and the concurrency cap.  ``/openapi.json`` describes it all.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import (
    api_certificates,
    api_keys,
    api_log,
    api_lookups,
    api_lots,
    api_reports,
    api_stats,
    pages,
    pages_lots,
)
from hub.guard import Guard, Limits
from hub.http import exception_handlers
from hub.openapi import openapi_spec
from hub.service import Hub


def _service_routes() -> list[Route]:
    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [Route("/healthz", health), Route("/openapi.json", openapi)]


def create_app(hub: Hub, limits: Limits | None = None) -> Starlette:
    routes = [
        *_service_routes(),
        *pages.routes(hub),
        *pages_lots.routes(hub),
        *api_lookups.routes(hub),  # before /api/v1/certificates/{cert_id}: "/api/v1/certificates" search
        *api_certificates.routes(hub),
        *api_reports.routes(hub),
        *api_keys.routes(hub),
        *api_log.routes(hub),
        *api_lots.routes(hub),
        *api_stats.routes(hub),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, limits=limits or Limits())],
        exception_handlers=exception_handlers(),
    )
    app.state.hub = hub
    return app
