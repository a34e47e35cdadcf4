"""The hub's HTTP interface (ASGI, Starlette).

API (JSON; the full description is served at ``/openapi.json``):

* ``PUT /api/v1/certificates/{id}``  upload a signed certificate (station token); 201 stored, 200 the
  same bytes were already stored, 409 different bytes under this id or this chain place, 403 signed
  by another station's key, 413 over 1 MiB, 422 does not verify (``{"error": code, "message": ...}``)
* ``GET /api/v1/certificates/{id}``  the stored facts and a verification done now (public: the id is
  what the donor holds)
* ``GET /api/v1/certificates/{id}/raw``  the signed certificate itself, to verify offline
* ``GET /api/v1/certificates/{id}/snapshot``  the drive's record as an eReuse DeviceHub Snapshot
* ``GET /api/v1/certificates?serial=&asset_number=&station=``  search (station token; your organisation)
* ``GET /api/v1/stations/{station_id}``  a station's chain: count, highest number, gaps (token)
* ``GET /api/v1/machines/{asset_number}/snapshot``  a machine's record as a DeviceHub Snapshot (token)
* ``PUT /api/v1/reports/{sha256}``  upload a diagnostics report (station token)
* ``GET /verify`` and ``/verify/{id}``  a plain HTML page (no JavaScript): paste a certificate id, or
  follow the QR code (``<verification_url>?id=<id>&sha256=<hash>``: set the station's
  ``verification_url`` to ``https://<hub>/verify``)
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from certs.verify import Verdict
from hub.db import CertificateRow
from hub.errors import HubError, NotFound, TooLarge
from hub.openapi import openapi_spec
from hub.service import MAX_UPLOAD_BYTES, Hub, StationInfo, summary
from hub.snapshot import snapshot


async def read_body(request: Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The request body, refusing (413) anything over ``limit`` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"uploads are limited to {limit} bytes, this one declares {declared}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"uploads are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(hub: Hub) -> Starlette:
    async def authed(request: Request) -> StationInfo:
        return await run_in_threadpool(hub.authenticate, request.headers.get("authorization"))

    async def put_certificate(request: Request) -> Response:
        station = await authed(request)
        body = await read_body(request)
        cert_id = request.path_params["cert_id"]
        stored = await run_in_threadpool(hub.ingest_certificate, station, cert_id, body)
        row = stored.row
        return JSONResponse(
            {
                "certificate_id": row.certificate_id,
                "status": "stored" if stored.created else "already_stored",
                "kind": row.kind,
                "outcome": row.outcome,
                "sequence": row.sequence,
                "sha256": row.digest,
                "verify_url": f"/verify/{row.certificate_id}",
            },
            status_code=201 if stored.created else 200,
        )

    async def get_certificate(request: Request) -> Response:
        row, verdict = await run_in_threadpool(_lookup, hub, request.path_params["cert_id"])
        return JSONResponse(summary(row, verdict))

    async def get_raw(request: Request) -> Response:
        row = await run_in_threadpool(hub.get, request.path_params["cert_id"])
        return Response(row.body, media_type="application/json")

    async def get_snapshot(request: Request) -> Response:
        row = await run_in_threadpool(hub.get, request.path_params["cert_id"])
        return JSONResponse(snapshot([row], row.asset_number or row.certificate_id))

    async def search(request: Request) -> Response:
        station = await authed(request)
        q = request.query_params
        if not any(q.get(k) for k in ("serial", "asset_number", "station")):
            raise HubError("search by serial, asset_number or station", code="missing_query")

        def run() -> list[dict[str, Any]]:
            rows = hub.search(
                station.organisation_id,
                serial=q.get("serial"),
                asset_number=q.get("asset_number"),
                station=q.get("station"),
            )
            return [summary(r, hub.verify_stored(r)) for r in rows]

        return JSONResponse({"certificates": await run_in_threadpool(run)})

    async def station_chain(request: Request) -> Response:
        station = await authed(request)
        report = await run_in_threadpool(
            hub.chain_report, station.organisation_id, request.path_params["station_id"]
        )
        return JSONResponse(report)

    async def machine_snapshot(request: Request) -> Response:
        station = await authed(request)
        asset = request.path_params["asset_number"]
        rows = await run_in_threadpool(hub.search, station.organisation_id, asset_number=asset)
        if not rows:
            raise NotFound(f"no certificate for asset number {asset!r} in your organisation")
        return JSONResponse(await run_in_threadpool(snapshot, rows, asset))

    async def put_report(request: Request) -> Response:
        station = await authed(request)
        body = await read_body(request)
        report_id = request.path_params["report_id"]
        created = await run_in_threadpool(hub.ingest_report, station, report_id, body)
        return JSONResponse(
            {"report_id": report_id, "status": "stored" if created else "already_stored"},
            status_code=201 if created else 200,
        )

    async def verify_form(request: Request) -> Response:
        cert_id = (request.query_params.get("id") or "").strip().lower()
        if not cert_id:
            return HTMLResponse(_page("Verify a certificate", _FORM))
        return await _verify_page(cert_id, request.query_params.get("sha256"))

    async def verify_one(request: Request) -> Response:
        return await _verify_page(request.path_params["cert_id"], request.query_params.get("sha256"))

    async def _verify_page(cert_id: str, sha256: str | None) -> Response:
        try:
            row, verdict = await run_in_threadpool(_lookup, hub, cert_id)
        except NotFound as e:
            return HTMLResponse(
                _page("Certificate not found", f"<p>{html.escape(e.message)}</p>{_FORM}"), status_code=404
            )
        return HTMLResponse(_result_html(row, verdict, sha256))

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def root(request: Request) -> Response:
        return RedirectResponse("/verify")

    async def hub_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubError)
        return JSONResponse(exc.to_json(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"error": "http_error", "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    routes = [
        Route("/", root),
        Route("/healthz", health),
        Route("/openapi.json", openapi),
        Route("/verify", verify_form),
        Route("/verify/{cert_id}", verify_one),
        Route("/api/v1/certificates", search),
        Route("/api/v1/certificates/{cert_id}", put_certificate, methods=["PUT"]),
        Route("/api/v1/certificates/{cert_id}", get_certificate, methods=["GET"]),
        Route("/api/v1/certificates/{cert_id}/raw", get_raw),
        Route("/api/v1/certificates/{cert_id}/snapshot", get_snapshot),
        Route("/api/v1/stations/{station_id}", station_chain),
        Route("/api/v1/machines/{asset_number}/snapshot", machine_snapshot),
        Route("/api/v1/reports/{report_id}", put_report, methods=["PUT"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HubError: hub_error, HTTPException: http_error},
    )
    app.state.hub = hub
    return app


def _lookup(hub: Hub, cert_id: str) -> tuple[CertificateRow, Verdict]:
    row = hub.get(cert_id.strip().lower())
    return row, hub.verify_stored(row)


_FORM = """<form method="get" action="/verify">
<label for="id">Certificate id</label>
<input id="id" name="id" size="40" placeholder="0b3c5e2a-....">
<button type="submit">Verify</button>
</form>"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} - Tabula</title>"
        "<style>body{font-family:sans-serif;max-width:44em;margin:2em auto;padding:0 1em}"
        ".ok{color:#075e07}.bad{color:#a40000}td{padding:.2em .8em .2em 0;vertical-align:top}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _result_html(row: CertificateRow, verdict: Verdict, sha256: str | None) -> str:
    e = html.escape
    if verdict.ok:
        headline = (
            '<p class="ok"><strong>Erased and verified.</strong> This signed certificate is authentic.</p>'
        )
    elif verdict.authentic:
        reasons = "; ".join(m for _, m in verdict.problems)
        headline = (
            '<p class="bad"><strong>FAILURE REPORT: this drive was NOT (provably) erased.</strong> '
            f"The record is authentic. {e(reasons)}</p>"
        )
    else:
        headline = (
            '<p class="bad"><strong>This certificate does not verify.</strong> '
            f"{e(verdict.problems[0][1] if verdict.problems else '')}</p>"
        )
    if sha256 is not None and sha256.strip().lower() != row.digest:
        headline += (
            '<p class="bad"><strong>Warning:</strong> the SHA-256 in your link or QR code does not '
            "match the stored certificate. Your copy may have been altered.</p>"
        )
    facts = [
        ("Certificate id", row.certificate_id),
        ("Result", f"{row.kind.replace('_', ' ')}: {row.outcome}, NIST level {row.level_achieved}"),
        ("Drive", " ".join(x for x in (row.manufacturer, row.model) if x) or "?"),
        ("Serial number", row.serial or "?"),
        ("Asset number", row.asset_number or "-"),
        ("Station", f"{row.station_name} (certificate #{row.sequence})"),
        ("Issued", row.issued_at),
        ("Signature", verdict.trust or verdict.reason),
        ("SHA-256", row.digest),
    ]
    table = (
        "<table>" + "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in facts) + "</table>"
    )
    raw = (
        f'<p><a href="/api/v1/certificates/{e(row.certificate_id)}/raw">Download the signed certificate</a>'
        " to verify it offline (<code>station verify</code>, or openssl alone).</p>"
    )
    return _page("Certificate verification", headline + table + raw + _FORM)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
