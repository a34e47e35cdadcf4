"""Routes for certificates: upload (station token; one, or a batch: :mod:`hub.batch`), public lookup, the signed copy (organisation
token), and the single-drive DeviceHub snapshot.

The public lookup shows non-personal facts only (erased or not, level, date, drive, asset number,
station, organisation, verification).  The signed copy (``/raw``) names the donor, the technician
and a contact: it goes only to a token of the certificate's organisation (see hub/README.md,
"Personal data").
"""

from __future__ import annotations

import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import batch
from hub.errors import Forbidden, Gone, TooManyRequests, Unauthorized
from hub.guard import CHARGE
from hub.http import authed, optional_station, read_body
from hub.ingest import Stored
from hub.service import Hub, summary
from hub.snapshot import snapshot

REDACTED = (
    "the signed copy of this certificate was removed on request (personal data); its facts and SHA-256 remain"
)


def stored_json(stored: Stored) -> dict[str, Any]:
    """The answer to an upload that is stored (201) or was already (200)."""
    row = stored.row
    return {
        "certificate_id": row.certificate_id,
        "status": "stored" if stored.created else "already_stored",
        "kind": row.kind,
        "outcome": row.outcome,
        "sequence": row.sequence,
        "sha256": row.digest,
        "verify_url": f"/verify/{row.certificate_id}",
        "log": stored.proof,
    }


def destruction_routes(hub: Hub) -> list[Route]:
    async def put_destruction(request: Request) -> Response:
        station = await authed(hub, request)
        body = await read_body(request)
        stored = await run_in_threadpool(
            hub.ingest_destruction, station, request.path_params["record_id"], body
        )
        row = stored.row
        return JSONResponse(
            {
                "record_id": row.certificate_id,
                "status": "stored" if stored.created else "already_stored",
                "kind": row.kind,
                "sequence": row.sequence,
                "sha256": row.digest,
                "verify_url": f"/verify/{row.certificate_id}",
                "log": stored.proof,
            },
            status_code=201 if stored.created else 200,
        )

    return [Route("/api/v1/destructions/{record_id}", put_destruction, methods=["PUT"])]


def routes(hub: Hub) -> list[Route]:
    async def put_certificate(request: Request) -> Response:
        station = await authed(hub, request)
        body = await read_body(request)
        stored = await run_in_threadpool(
            hub.ingest_certificate, station, request.path_params["cert_id"], body
        )
        return JSONResponse(stored_json(stored), status_code=201 if stored.created else 200)

    async def post_batch(request: Request) -> Response:
        station = await authed(hub, request)
        items = batch.parse_batch(await read_body(request, batch.MAX_BYTES))
        charge = request.scope.get(CHARGE)
        extra = math.ceil(len(items) / batch.ITEMS_PER_REQUEST) - 1
        wait = charge(extra) if charge is not None and extra > 0 else 0.0
        if wait > 0:  # the rate limit counts what the hub does, not requests
            raise TooManyRequests(
                f"this batch of {len(items)} is over this client's rate limit", retry_after=math.ceil(wait)
            )
        results = await run_in_threadpool(batch.ingest_batch, hub, station, items)
        return JSONResponse({"results": [batch.result_json(r, stored_json) for r in results]})

    async def get_certificate(request: Request) -> Response:
        found = await run_in_threadpool(hub.find, request.path_params["cert_id"])
        return JSONResponse(summary(found))

    async def get_raw(request: Request) -> Response:
        station = await optional_station(hub, request)
        found = await run_in_threadpool(hub.find, request.path_params["cert_id"])
        if station is None:
            raise Unauthorized(
                "the signed certificate names the donor and the technician: it is served to its "
                "organisation only (Authorization: Bearer <token>)",
                hint="the public facts and verification are at /api/v1/certificates/{id}",
            )
        if station.organisation_id != found.organisation_id:
            raise Forbidden("this certificate belongs to another organisation", code="other_organisation")
        if found.row.redacted_at is not None:
            raise Gone(REDACTED, code="personal_data_removed")
        return Response(
            found.row.body, media_type="application/json", headers={"Cache-Control": "private, no-store"}
        )

    async def get_snapshot(request: Request) -> Response:
        found = await run_in_threadpool(hub.find, request.path_params["cert_id"])
        if found.row.redacted_at is not None:
            raise Gone(REDACTED, code="personal_data_removed")
        row = found.row
        return JSONResponse(snapshot([row], row.asset_number or row.certificate_id))

    return [
        Route("/api/v1/certificates:batch", post_batch, methods=["POST"]),
        Route("/api/v1/certificates/{cert_id}", put_certificate, methods=["PUT"]),
        Route("/api/v1/certificates/{cert_id}", get_certificate, methods=["GET"]),
        Route("/api/v1/certificates/{cert_id}/raw", get_raw),
        Route("/api/v1/certificates/{cert_id}/snapshot", get_snapshot),
        *destruction_routes(hub),
    ]
