"""Public routes of the transparency log, and the chain heads stations publish.

* ``/api/v1/log/key.pem``: the log's public key (``Tabula-Role: log``), for ``station verify --log``;
* ``/api/v1/log/tree-head``: the latest signed tree head;
* ``/api/v1/log/proof?certificate_id=ID`` (or ``sha256=HASH``) ``[&tree_size=N]``: an inclusion proof;
* ``/api/v1/log/consistency?first=M[&second=N]``: a consistency proof (to the latest tree by default,
  whose signed head comes with it);
* ``/api/v1/log/entries?start=S[&count=C]``: the leaves (certificate id and hash), for monitors;
* ``POST /api/v1/chain-heads`` (station token): publish a signed chain head;
  ``/api/v1/chain-heads/{kid}``: every head of a station key, newest first;
  ``/api/v1/chain-heads/{kid}/latest``: the newest, byte for byte.

None of this is personal data: hashes, certificate ids (what a donor holds), station ids and keys.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from certs.merkle import MAX_TREE_SIZE
from hub import chainheads
from hub.db import ChainHeadRow
from hub.errors import HubError
from hub.http import authed, read_body
from hub.ids import is_certificate_id, normalise_id
from hub.service import Hub

_LOG = "/api/v1/log"
_HEADS = "/api/v1/chain-heads"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NO_STORE = {"Cache-Control": "no-store"}
MAX_ENTRIES = 1000


def _size(value: str | None, name: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    if not value.isdigit() or len(value) > 16 or int(value) > MAX_TREE_SIZE:
        raise HubError(f"{name} is a number of leaves (0 to {MAX_TREE_SIZE})", code="bad_tree_size")
    return int(value)


def _which(request: Request) -> dict[str, str]:
    q = request.query_params
    cert_id, sha = q.get("certificate_id"), q.get("sha256")
    if (cert_id is None) == (sha is None):
        raise HubError("give certificate_id or sha256 (the certificate's hash)", code="missing_query")
    if cert_id is not None:
        cert_id = normalise_id(cert_id)
        if not is_certificate_id(cert_id):
            raise HubError("certificate_id is a UUID", code="bad_id")
        return {"certificate_id": cert_id}
    assert sha is not None
    sha = sha.strip().lower()
    if not _HEX64.match(sha):
        raise HubError("sha256 is 64 hex characters", code="bad_id")
    return {"sha256": sha}


def _head_json(row: ChainHeadRow) -> dict[str, Any]:
    return {
        "sequence": row.sequence,
        "sha256": row.digest,
        "issued_at": row.issued_at,
        "received_at": row.received_at.isoformat() if row.received_at else None,
        "chain_head": row.body.decode("utf-8", "replace"),
    }


def _log_routes(hub: Hub) -> list[Route]:
    async def key_pem(request: Request) -> Response:
        _, _, pem = await run_in_threadpool(hub.log.key)
        return Response(pem, media_type="application/x-pem-file")

    async def tree_head(request: Request) -> Response:
        head = await run_in_threadpool(hub.log.latest)
        return Response(head.tree_head, media_type="application/json", headers=_NO_STORE)

    async def proof(request: Request) -> Response:
        which = _which(request)
        size = _size(request.query_params.get("tree_size"), "tree_size")

        def run() -> dict[str, Any]:
            cert_id, digest, index = hub.log.find(**which)
            return hub.log.proof_at(cert_id, digest, index, size)

        return JSONResponse(await run_in_threadpool(run), headers=_NO_STORE)

    async def consistency(request: Request) -> Response:
        q = request.query_params
        first = _size(q.get("first"), "first")
        if first is None:
            raise HubError("give first (the size of the tree head you hold)", code="missing_query")
        doc = await run_in_threadpool(hub.log.consistency, first, _size(q.get("second"), "second"))
        return JSONResponse(doc, headers=_NO_STORE)

    async def entries(request: Request) -> Response:
        q = request.query_params
        start = _size(q.get("start"), "start", 0) or 0
        count = min(MAX_ENTRIES, _size(q.get("count"), "count", MAX_ENTRIES) or 0)
        rows = await run_in_threadpool(hub.log.entries, start, count)
        return JSONResponse({"start": start, "entries": rows})

    return [
        Route(_LOG + "/key.pem", key_pem),
        Route(_LOG + "/tree-head", tree_head),
        Route(_LOG + "/proof", proof),
        Route(_LOG + "/consistency", consistency),
        Route(_LOG + "/entries", entries),
    ]


def _head_routes(hub: Hub) -> list[Route]:
    async def publish(request: Request) -> Response:
        station = await authed(hub, request)
        body = await read_body(request)
        created, head = await run_in_threadpool(chainheads.publish, hub, station, body)
        return JSONResponse(
            {
                "status": "stored" if created else "already_stored",
                "station_kid": head.station_kid,
                "sequence": head.sequence,
                "sha256": head.sha256,
            },
            status_code=201 if created else 200,
        )

    async def heads(request: Request) -> Response:
        rows = await run_in_threadpool(chainheads.heads_of, hub, request.path_params["kid"])
        return JSONResponse(
            {"station_kid": rows[0].station_kid, "chain_heads": [_head_json(r) for r in rows]}
        )

    async def latest(request: Request) -> Response:
        rows = await run_in_threadpool(chainheads.heads_of, hub, request.path_params["kid"], 1)
        return Response(rows[0].body, media_type="application/json", headers=_NO_STORE)

    return [
        Route(_HEADS, publish, methods=["POST"]),
        Route(_HEADS + "/{kid}", heads),
        Route(_HEADS + "/{kid}/latest", latest),
    ]


def routes(hub: Hub) -> list[Route]:
    return [*_log_routes(hub), *_head_routes(hub)]
