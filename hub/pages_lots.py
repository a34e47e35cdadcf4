"""HTML pages of donation lots, in French and English, without any script.

* ``/lots/{id}``: the staff page of a lot (staff token: HTTP Basic with the token as password, or a
  bearer token): received / diagnosed / cleared / repaired / outcome counts, the devices missing
  proof and why, every device, the donor contact (personal data) until the retention rule erases it;
* ``/donor/{token}``: the donor's page, behind a capability link (a random 256-bit token, of which
  the hub keeps the SHA-256; the staff replace or withdraw it): that lot's progress and impact,
  nothing of any other lot or donor, no contact, no serial numbers, no technician.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hub import lots
from hub.api_lots import lot_id
from hub.db import StaffInfo
from hub.errors import NotFound, Unauthorized
from hub.impact import ImpactLine, impact_line
from hub.lotfacts import OUTCOMES, DeviceState
from hub.pages import page
from hub.pagetext import language, t
from hub.service import Hub

_PRIVATE = {"Cache-Control": "private, no-store"}
_E = html.escape


def lang_of(request: Request) -> str:
    return language(request.query_params.get("lang"), request.headers.get("accept-language"))


def _switch(lang: str) -> str:
    other = "fr" if lang == "en" else "en"
    return f'<p><a href="?lang={other}" hreflang="{other}">{_E(t("other_language", lang))}</a></p>'


def _table(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><td>{_E(k)}</td><td>{_E(v)}</td></tr>" for k, v in rows) + "</table>"


def _counts(view: lots.LotView, lang: str) -> str:
    c = view.counts
    rows = [
        (t("devices", lang), str(c.devices)),
        (t("diagnosed", lang), str(c.diagnosed)),
        (t("cleared", lang), str(c.cleared)),
        (t("repaired", lang), str(c.repaired)),
    ]
    rows += [(t(f"outcome_{o}", lang), str(c.outcomes[o])) for o in OUTCOMES]
    rows.append((t("outcome_none", lang), str(c.devices - sum(c.outcomes.values()))))
    return f"<h2>{_E(t('progress', lang))}</h2>" + _table(rows)


def _outcome(s: DeviceState, lang: str) -> str:
    o = s.outcome
    if o is None or o.outcome is None:
        return t("outcome_none", lang)
    return t(f"outcome_{o.outcome}", lang) + (f" ({o.detail})" if o.detail else "")


def _devices(states: Sequence[DeviceState], lang: str) -> str:
    head = "".join(
        f"<th>{_E(t(k, lang))}</th>" for k in ("asset", "kind", "device", "verdict", "data", "outcome")
    )
    body = ""
    for s in states:
        cells = (
            s.facts.asset_number,
            s.facts.kind,
            " ".join(x for x in (s.make, s.model) if x) or "-",
            t(s.verdict, lang) if s.verdict else "-",
            t("yes_cleared", lang) if s.data_cleared else t("not_cleared", lang),
            _outcome(s, lang),
        )
        body += "<tr>" + "".join(f"<td>{_E(c)}</td>" for c in cells) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _missing(states: Sequence[DeviceState], lang: str) -> str:
    missing = [s for s in states if not s.data_cleared]
    out = f"<h2>{_E(t('missing', lang))}</h2>"
    if not missing:
        return out + f'<p class="ok">{_E(t("missing_none", lang))}</p>'
    items = "".join(
        f"<li><strong>{_E(s.facts.asset_number)}</strong>: {_E(s.cleared_problem or '')}</li>"
        for s in missing
    )
    return out + f'<ul class="bad">{items}</ul>'


def _impact(line: ImpactLine | None, lang: str) -> str:
    if line is None:
        return ""
    text = t("impact_text", lang, n=line.devices, waste=line.waste_kg, co2=line.co2e_kg, table=line.table)
    return f"<h2>{_E(t('impact', lang))}</h2><p>{_E(text)}</p>"


def staff_html(view: lots.LotView, lang: str, contact: bool) -> str:
    lot = view.lot
    facts = [
        (t("reference", lang), lot.reference),
        (t("donor", lang), lot.donor_name),
        (t("donor_kind", lang), t(lot.donor_kind, lang)),
        (t("received_on", lang), lot.received_on),
        (t("closed", lang), lots.iso(lot.closed_at) or t("open", lang)),
    ]
    if contact:
        facts.append((t("contact", lang), lot.contact or t("contact_erased", lang)))
    body = _switch(lang) + _table(facts) + _counts(view, lang) + _missing(view.states, lang)
    body += f"<h2>{_E(t('devices', lang))}</h2>" + _devices(view.states, lang)
    return page(f"{t('lot', lang)} {lot.reference} - {view.organisation}", body, lang)


def donor_html(view: lots.LotView, impact: ImpactLine | None, lang: str) -> str:
    lot = view.lot
    intro = t("donor_intro", lang, org=view.organisation, date=lot.received_on)
    facts = [(t("reference", lang), lot.reference), (t("received_on", lang), lot.received_on)]
    body = _switch(lang) + f"<p>{_E(intro)}</p>" + _table(facts) + _counts(view, lang) + _impact(impact, lang)
    body += f"<h2>{_E(t('devices', lang))}</h2>" + _devices(view.states, lang)
    return page(t("donor_title", lang), body, lang)


def routes(hub: Hub) -> list[Route]:
    async def staff_page(request: Request) -> Response:
        lang = lang_of(request)
        try:
            actor = await run_in_threadpool(hub.actor, request.headers.get("authorization"))
        except Unauthorized:
            headers = {"WWW-Authenticate": 'Basic realm="Tabula hub staff", charset="UTF-8"', **_PRIVATE}
            return HTMLResponse(
                page(t("lot", lang), f"<p>{_E(t('staff_only', lang))}</p>", lang), 401, headers
            )
        try:
            lot = await run_in_threadpool(
                lots.find_lot, hub, lots.organisation_of(actor), lot_id=lot_id(request)
            )
        except NotFound:
            return HTMLResponse(page(t("not_found", lang), "", lang), 404, _PRIVATE)
        view = await run_in_threadpool(lots.lot_view, hub, lot)
        return HTMLResponse(staff_html(view, lang, isinstance(actor, StaffInfo)), headers=_PRIVATE)

    async def donor_page(request: Request) -> Response:
        lang = lang_of(request)
        lot = await run_in_threadpool(lots.lot_by_donor_token, hub, request.path_params["token"])
        if lot is None:
            return HTMLResponse(
                page(t("not_found", lang), f"<p>{_E(t('donor_gone', lang))}</p>", lang), 404, _PRIVATE
            )
        view = await run_in_threadpool(lots.lot_view, hub, lot)
        impact = await run_in_threadpool(impact_line, hub, view.counts.reused_by_kind)
        return HTMLResponse(donor_html(view, impact, lang), headers=_PRIVATE)

    return [Route("/lots/{lot_id}", staff_page), Route("/donor/{token}", donor_page)]
