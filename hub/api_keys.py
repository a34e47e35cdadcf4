"""Public routes for auditors: what they need to verify certificates offline, at stable URLs.

* ``/api/v1/organisations``: registered organisations (registered name, key fingerprint, links);
* ``/api/v1/organisations/{kid}/keys.pem``: the organisation's public key (a trust store for
  ``station verify --trust DIR`` holds this file);
* ``/api/v1/organisations/{kid}/endorsements``: every station key it endorsed and the hub enrolled,
  with the endorsement itself (a signed JWS);
* ``/api/v1/organisations/{kid}/revocations.json``: the station keys *the hub* revoked
  (``station-hub revoke``: no more uploads), with time and reason: the hub's word, unsigned;
* ``/api/v1/organisations/{kid}/revocations.jws``: the revocation list *the organisation* signed
  (``station keys revoke``), byte for byte, which ``station verify --trust`` honours; ``PUT`` a newer
  one there (its signature by the registered organisation key is what authenticates it).

None of this is personal data: station ids, key fingerprints and the organisation's name.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import revocations as revocation_lists
from hub.db import Organisation, Station
from hub.http import read_body
from hub.service import Hub

_PREFIX = "/api/v1/organisations"


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat()


def _links(org: Organisation) -> dict[str, str]:
    base = f"{_PREFIX}/{org.kid}"
    return {
        "keys": f"{base}/keys.pem",
        "endorsements": f"{base}/endorsements",
        "revocations": f"{base}/revocations.json",
        "revocation_list": f"{base}/revocations.jws",
    }


def _station(st: Station) -> dict[str, Any]:
    return {
        "station_id": st.station_id,
        "kid": st.kid,
        "enrolled_at": _iso(st.created_at),
        "revoked_at": _iso(st.revoked_at),
        "endorsement": json.loads(st.endorsement),
    }


def routes(hub: Hub) -> list[Route]:
    async def organisations(request: Request) -> Response:
        orgs = await run_in_threadpool(hub.organisations)
        return JSONResponse(
            {"organisations": [{"name": o.name, "kid": o.kid, "links": _links(o)} for o in orgs]}
        )

    async def keys_pem(request: Request) -> Response:
        org, _ = await run_in_threadpool(hub.organisation, request.path_params["kid"])
        return Response(org.public_pem, media_type="application/x-pem-file")

    async def endorsements(request: Request) -> Response:
        org, stations = await run_in_threadpool(hub.organisation, request.path_params["kid"])
        return JSONResponse(
            {"organisation": org.name, "kid": org.kid, "stations": [_station(st) for st in stations]}
        )

    async def revocations(request: Request) -> Response:
        org, stations = await run_in_threadpool(hub.organisation, request.path_params["kid"])
        revoked = [
            {
                "station_id": st.station_id,
                "kid": st.kid,
                "revoked_at": _iso(st.revoked_at),
                "reason": st.revocation_reason,
            }
            for st in stations
            if st.revoked_at is not None
        ]
        return JSONResponse({"organisation": org.name, "kid": org.kid, "revocations": revoked})

    async def signed_list(request: Request) -> Response:
        data = await run_in_threadpool(revocation_lists.signed_list, hub, request.path_params["kid"])
        return Response(data, media_type="application/json", headers={"Cache-Control": "no-cache"})

    async def put_signed_list(request: Request) -> Response:
        body = await read_body(request)
        created, rl, name = await run_in_threadpool(
            revocation_lists.accept, hub, body, request.path_params["kid"]
        )
        return JSONResponse(
            {
                "status": "stored" if created else "already_stored",
                "organisation": name,
                "issued_at": rl.issued_at,
                "revoked": [r.kid for r in rl.revoked],
            },
            status_code=201 if created else 200,
        )

    return [
        Route(_PREFIX, organisations),
        Route(_PREFIX + "/{kid}/keys.pem", keys_pem),
        Route(_PREFIX + "/{kid}/endorsements", endorsements),
        Route(_PREFIX + "/{kid}/revocations.json", revocations),
        Route(_PREFIX + "/{kid}/revocations.jws", signed_list, methods=["GET"]),
        Route(_PREFIX + "/{kid}/revocations.jws", put_signed_list, methods=["PUT"]),
    ]
