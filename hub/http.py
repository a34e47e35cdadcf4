"""HTTP plumbing shared by the hub's routes: bodies, tokens, and the error -> answer mapping.

Answers (the contract with ``station sync``; hub/README.md, "Answers"):

* 2xx: stored (201) or already stored (200);
* 4xx other than 401 and 429: permanent, the request itself is wrong; JSON ``{"error": code,
  "message": text}`` with a stable code;
* 401: no, unknown or expired token;
* 429 (rate limit) and 503 (database or other infrastructure trouble): transient, with
  ``Retry-After`` in seconds;
* 500: only for a bug in the hub (logged with its traceback); no input should produce it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from hub.db import StationInfo
from hub.errors import HubError, TooLarge, Transient, UnsupportedMediaType
from hub.guard import SECURITY_HEADERS
from hub.ingest import MAX_UPLOAD_BYTES
from hub.service import Hub

log = logging.getLogger("hub.http")

#: Database failures a retry can cure: connection lost or refused, pool exhausted, lock timeout.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    DisconnectionError,
)
DB_RETRY_AFTER = 5
_JSON_TYPES = ("application/json", "application/jose+json")


async def read_body(request: Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The request body, refusing (413) anything over ``limit`` without reading it all."""
    ctype = request.headers.get("content-type")
    if ctype is not None and ctype.split(";", 1)[0].strip().lower() not in _JSON_TYPES:
        raise UnsupportedMediaType(f"send JSON (Content-Type: application/json), not {ctype[:80]!r}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"uploads are limited to {limit} bytes, this one declares {declared[:20]}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"uploads are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def authed(hub: Hub, request: Request) -> StationInfo:
    return await run_in_threadpool(hub.authenticate, request.headers.get("authorization"))


async def optional_station(hub: Hub, request: Request) -> StationInfo | None:
    if request.headers.get("authorization") is None:
        return None
    return await authed(hub, request)


# --- exception handlers ---------------------------------------------------------------------------


async def hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Transient) else None
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


async def database_error(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable (%s): %s", type(exc).__name__, str(exc).splitlines()[0][:200])
    return JSONResponse(
        {"error": "database_unavailable", "message": "the hub's database is unavailable; try again later"},
        status_code=503,
        headers={"Retry-After": str(DB_RETRY_AFTER)},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(
        {"error": "http_error", "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up mid-request: nothing to answer, nothing to alarm anyone with."""
    log.info("client %s disconnected during %s %s", _client(request), request.method, request.url.path)
    return Response(status_code=499)


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug: answered 500 (with the security headers: this answer bypasses the middleware)."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "message": "internal error in the hub (it was logged)"},
        status_code=500,
        headers=dict(SECURITY_HEADERS),
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def exception_handlers() -> dict[Any, Any]:
    handlers: dict[Any, Any] = {
        HubError: hub_error,
        HTTPException: http_error,
        ClientDisconnect: client_gone,
        Exception: internal_error,
    }
    for kind in TRANSIENT_DB_ERRORS:
        handlers[kind] = database_error
    return handlers
