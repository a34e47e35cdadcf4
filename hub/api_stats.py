"""Network statistics for a coordinator's token: ``/stats`` (HTML with server-rendered SVG charts,
French and English), ``/api/v1/stats`` (JSON) and ``/api/v1/stats.csv``.

A coordinator token without an organisation sees the whole network; one with an organisation sees
that organisation.  Staff and station tokens are refused (403 ``wrong_role``).  The figures are
computed by :mod:`hub.statsfacts` from a few grouped queries.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from hub.db import CertificateRow, Device, DeviceEvent, Lot, Organisation, StaffInfo, Station
from hub.errors import Forbidden, Unauthorized
from hub.impact import impact_line
from hub.lotfacts import sort_time
from hub.lots import iso
from hub.pages import page
from hub.pages_lots import lang_of
from hub.pagetext import t
from hub.service import Hub
from hub.statsfacts import DeviceRow, RecordRow, Stats, compute, to_csv
from hub.svg import bars, columns

_PRIVATE = {"Cache-Control": "private, no-store"}
_E = html.escape


def coordinator(hub: Hub, authorization: str | None) -> StaffInfo:
    actor = hub.actor(authorization)
    if not isinstance(actor, StaffInfo) or actor.role != "coordinator":
        raise Forbidden("the statistics need a coordinator's token (station-hub staff add --role coordinator)",
                        code="wrong_role")  # fmt: skip
    return actor


def _devices(s: Session, org_id: int | None) -> list[DeviceRow]:
    q = (
        select(Device.id, Organisation.name, Lot.reference, Device.kind)
        .join(Lot, Lot.id == Device.lot_id)
        .join(Organisation, Organisation.id == Device.organisation_id)
    )
    ev = select(DeviceEvent.device_id, DeviceEvent.kind, DeviceEvent.at, DeviceEvent.outcome).join(
        Device, Device.id == DeviceEvent.device_id
    )
    if org_id is not None:
        q, ev = q.where(Device.organisation_id == org_id), ev.where(Device.organisation_id == org_id)
    received: dict[int, str] = {}
    outcome: dict[int, tuple[str, str | None]] = {}
    for device_id, kind, at, what in s.execute(ev.where(DeviceEvent.kind.in_(("received", "outcome")))):
        when = iso(at) or ""
        if kind == "received" and (
            device_id not in received or sort_time(when) < sort_time(received[device_id])
        ):
            received[device_id] = when
        if kind == "outcome" and (
            device_id not in outcome or sort_time(when) >= sort_time(outcome[device_id][0])
        ):
            outcome[device_id] = (when, what)
    return [
        DeviceRow(
            d,
            org,
            lot,
            kind,
            received.get(d),
            outcome.get(d, (None, None))[1],
            outcome.get(d, (None, None))[0],
        )
        for d, org, lot, kind in s.execute(q)
    ]


def _records(s: Session, org_id: int | None) -> list[RecordRow]:
    c = CertificateRow
    q = (
        select(Organisation.name, c.kind, c.success, c.level_achieved, c.model, func.count())
        .join(Station, Station.id == c.station_pk)
        .join(Organisation, Organisation.id == Station.organisation_id)
        .group_by(Organisation.name, c.kind, c.success, c.level_achieved, c.model)
    )
    if org_id is not None:
        q = q.where(Station.organisation_id == org_id)
    return [RecordRow(o, k, bool(ok), lv, m, int(n)) for o, k, ok, lv, m, n in s.execute(q)]


def network_stats(hub: Hub, actor: StaffInfo) -> Stats:
    with hub.read_session() as s:
        devices, records = _devices(s, actor.organisation_id), _records(s, actor.organisation_id)

    def impact(kinds: Mapping[str, int]) -> dict[str, Any]:
        return impact_line(hub, kinds).to_json()

    return compute(actor.organisation or "network", devices, records, impact)


def stats_html(st: Stats, lang: str) -> str:
    months: dict[str, int] = {}
    for (m, _w), n in sorted(st.per_month.items()):
        months[m] = months.get(m, 0) + n
    total = sum(st.outcomes.values()) or 1
    outcome_bars = [
        (t(f"outcome_{k}", lang), n, f"{n} ({n * 100 / total:.0f} %)") for k, n in st.outcomes.items()
    ]
    rates = [(r.model, r.rate, f"{r.failures}/{r.attempts} ({r.rate * 100:.1f} %)") for r in st.failure_rates]
    workshop_rows = "".join(
        f"<tr><td>{_E(m)}</td><td>{_E(w)}</td><td>{n}</td></tr>" for (m, w), n in sorted(st.per_month.items())
    )
    net = st.impact.get("network", {}).get("network", {})
    body = (
        f"<p>{_E(st.scope)}</p>"
        f"<h2>{_E(t('stats_devices', lang))}</h2>" + columns(t("stats_devices", lang), list(months.items()))
        + f"<table>{workshop_rows}</table>"
        f"<h2>{_E(t('outcome', lang))}</h2>" + bars(t("outcome", lang), outcome_bars)
        + f"<h2>{_E(t('stats_levels', lang))}</h2>" + bars(t("stats_levels", lang), [(k, n, str(n)) for k, n in st.levels.items()])
        + f"<h2>{_E(t('stats_failures', lang))}</h2>" + bars(t("stats_failures", lang), rates)
        + f"<h2>{_E(t('stats_median', lang))}</h2><p>{'-' if st.median_days is None else st.median_days}</p>"
        + f"<h2>{_E(t('impact', lang))}</h2><p>{_E(t('stats_impact', lang, n=net.get('devices', 0), co2=net.get('co2e_g', 0) / 1000, waste=net.get('waste_g', 0) / 1000))}</p>"
    )  # fmt: skip
    return page(t("stats", lang), body, lang)


def routes(hub: Hub) -> list[Route]:
    async def run(request: Request) -> Stats:
        def work() -> Stats:
            return network_stats(hub, coordinator(hub, request.headers.get("authorization")))

        return await run_in_threadpool(work)

    async def as_json(request: Request) -> Response:
        return JSONResponse((await run(request)).to_json(), headers=_PRIVATE)

    async def as_csv(request: Request) -> Response:
        body = to_csv(await run(request))
        return Response(body, media_type="text/csv; charset=utf-8", headers=_PRIVATE)

    async def as_html(request: Request) -> Response:
        lang = lang_of(request)
        try:
            st = await run(request)
        except Unauthorized:
            headers = {"WWW-Authenticate": 'Basic realm="Tabula hub staff", charset="UTF-8"', **_PRIVATE}
            return HTMLResponse(
                page(t("stats", lang), f"<p>{_E(t('staff_only', lang))}</p>", lang), 401, headers
            )
        return HTMLResponse(stats_html(st, lang), headers=_PRIVATE)

    return [
        Route("/stats", as_html),
        Route("/api/v1/stats", as_json),
        Route("/api/v1/stats.csv", as_csv),
    ]
