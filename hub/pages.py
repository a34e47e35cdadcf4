"""The HTML pages a donor reaches from the QR code: ``/verify`` (a form) and ``/verify/{id}``.

Plain HTML, no JavaScript, one inline stylesheet allowed by hash in the Content-Security-Policy.
They show what a donor needs and nothing personal: erased or not, NIST level, date, drive,
asset number, station, the organisation's registered name, and warnings (hash mismatch, station
revoked before the certificate was signed, personal data removed).
"""

from __future__ import annotations

import html

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from hub.errors import NotFound
from hub.guard import STYLE
from hub.service import Found, Hub

FORM = """<form method="get" action="/verify">
<label for="id">Certificate id</label>
<input id="id" name="id" size="40" placeholder="0b3c5e2a-....">
<button type="submit">Verify</button>
</form>"""


def page(title: str, body: str, lang: str = "en") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - Tabula</title><style>{STYLE}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _headline(found: Found) -> str:
    e, check = html.escape, found.check
    if found.row.kind == "destruction" and check.authentic and not check.problems:
        return (
            '<p class="ok"><strong>Physically destroyed (NIST SP 800-88 Destroy), never erased.</strong> '
            "This signed destruction record is authentic.</p>"
        )
    if check.ok:
        return '<p class="ok"><strong>Erased and verified.</strong> This signed certificate is authentic.</p>'
    if check.authentic:
        reasons = "; ".join(m for _, m in check.problems)
        return (
            '<p class="bad"><strong>FAILURE REPORT: this drive was NOT (provably) erased.</strong> '
            f"The record is authentic. {e(reasons)}</p>"
        )
    first = check.problems[0][1] if check.problems else ""
    return f'<p class="bad"><strong>This certificate does not verify.</strong> {e(first)}</p>'


def _warnings(found: Found, sha256: str | None) -> str:
    e, row, out = html.escape, found.row, ""
    if sha256 is not None and sha256.strip().lower() != row.digest:
        out += (
            '<p class="bad"><strong>Warning:</strong> the SHA-256 in your link or QR code does not '
            "match the stored certificate. Your copy may have been altered.</p>"
        )
    if found.revoked_at is not None:
        when = f"{found.revoked_at:%Y-%m-%d %H:%M} UTC"
        after = (
            " This certificate was signed <strong>after</strong> that."
            if found.signed_after_revocation
            else ""
        )
        out += (
            f'<p class="bad">The station key that signed it was revoked on {e(when)} '
            f"({e(found.revocation_reason or '')}).{after}</p>"
        )
    if row.redacted_at is not None:
        out += "<p>The hub's signed copy was removed on request (personal data); the facts below remain.</p>"
    return out


def result_html(found: Found, sha256: str | None) -> str:
    e, row = html.escape, found.row
    facts = [
        ("Certificate id", row.certificate_id),
        ("Result", f"{row.kind.replace('_', ' ')}: {row.outcome}, NIST level {row.level_achieved}"),
        ("Drive", " ".join(x for x in (row.manufacturer, row.model) if x) or "?"),
        ("Serial number", row.serial or "?"),
        ("Asset number", row.asset_number or "-"),
        ("Station", f"{row.station_name} (certificate #{row.sequence})"),
        ("Organisation", found.organisation),
        ("Issued", row.issued_at),
        ("Signature", found.check.trust),
        ("SHA-256", row.digest),
    ]
    table = (
        "<table>" + "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in facts) + "</table>"
    )
    keys = f"/api/v1/organisations/{e(found.organisation_kid)}/keys.pem"
    offline = (
        f'<p>To verify it offline, use the <a href="{keys}">organisation\'s public key</a> with '
        "<code>station verify --trust DIR</code> on the signed file the organisation keeps (it names "
        "the donor and the technician, so this public page does not show it).</p>"
    )
    return page(
        "Certificate verification", _headline(found) + _warnings(found, sha256) + table + offline + FORM
    )


def routes(hub: Hub) -> list[Route]:
    async def verify_page(cert_id: str, sha256: str | None) -> Response:
        try:
            found = await run_in_threadpool(hub.find, cert_id)
        except NotFound as e:
            return HTMLResponse(page("Certificate not found", f"<p>{html.escape(e.message)}</p>{FORM}"), 404)
        return HTMLResponse(result_html(found, sha256))

    async def verify_form(request: Request) -> Response:
        cert_id = request.query_params.get("id") or ""
        if not cert_id.strip():
            return HTMLResponse(page("Verify a certificate", FORM))
        return await verify_page(cert_id, request.query_params.get("sha256"))

    async def verify_one(request: Request) -> Response:
        return await verify_page(request.path_params["cert_id"], request.query_params.get("sha256"))

    async def root(request: Request) -> Response:
        return RedirectResponse("/verify")

    return [Route("/", root), Route("/verify", verify_form), Route("/verify/{cert_id}", verify_one)]
