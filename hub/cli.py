"""``station-hub``: run the traceability service and administer it.

::

    station-hub migrate --db URL                       # create or upgrade the schema (Alembic)
    station-hub serve --db URL [--host 127.0.0.1] [--port 8080] [--ssl-certfile F --ssl-keyfile F]
                      [--public-rate 20] [--station-rate 300] [--read-timeout 15] ...
    station-hub org add --db URL --name "Atelier Réemploi" --pem atelier-org.pem
    station-hub org revocations --db URL revocations.json   # the organisation's signed list
    station-hub log-key --db URL [--out hub-log.pem]   # the transparency log's public key
    station-hub enroll --db URL --endorsement bench-1.endorsement.json [--replace] [--expires 365d]
                       [--token-out F]
    station-hub token --db URL KID [--expires 90d] --token-out F   # replace a station's token
    station-hub revoke --db URL KID [--reason TEXT]
    station-hub stations --db URL [--json]
    station-hub forget --db URL CERTIFICATE_ID         # remove the personal data of one certificate
    station-hub staff add --db URL --name "Camille (accueil)" --role staff|coordinator [--org KID]
                          [--expires 365d] [--token-out F]
    station-hub staff list --db URL | staff revoke --db URL ID
    station-hub retention --db URL [--days 365]        # erase donor contacts of lots closed long ago
    station-hub lot-report --db URL REF --org-keys DIR [--lang fr|en] --out DIR
                           [--donor-url URL | --new-donor-link https://HUB] [--impact-factors F]

``--db`` defaults to ``$TABULA_HUB_DB`` or ``sqlite:///tabula-hub.sqlite3``; PostgreSQL URLs look
like ``postgresql://user@host/dbname``.  Stations are named by key fingerprint (or a unique prefix
of 8+ hex digits); a station id is accepted when it names exactly one key.  Tokens are written to
``--token-out`` (mode 0600) or, without it, printed once on stdout; the hub keeps only their
SHA-256 and never logs them.  ``serve`` and the admin commands create an empty database but refuse
one whose schema is older: run ``station-hub migrate`` (after a backup).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certs.keys import load_org_key
from host.errors import TabulaError
from hub import lotreports, lots, staff
from hub import revocations as revocation_lists
from hub.db import make_engine
from hub.errors import AdminError, HubError
from hub.guard import Limits
from hub.lotfacts import ROLES
from hub.migrate import upgrade
from hub.server import ServerLimits
from hub.service import Hub

_DURATION = re.compile(r"^(\d+)([dhm])$")
#: Default retention of a donor's contact after the lot is closed (hub/README.md, "Donation lots").
RETENTION_DAYS = 365


def _default_db() -> str:
    return os.environ.get("TABULA_HUB_DB", "sqlite:///tabula-hub.sqlite3")


def expiry(value: str | None) -> datetime | None:
    """``--expires``: a duration from now (``90d``, ``12h``, ``30m``) or an ISO date/time (UTC)."""
    if value is None:
        return None
    m = _DURATION.match(value.strip())
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return datetime.now(UTC) + timedelta(**{unit: int(m.group(1))})
    return _timestamp(value, "--expires", "a duration (90d, 12h) or a date (2027-06-30)")


def _timestamp(value: str, option: str, what: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AdminError(f"{option} {value!r}: give {what}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _since(value: str | None) -> datetime | None:
    return (
        None
        if value is None
        else _timestamp(value, "--since", "an ISO date or date-time (2026-11-30T08:00Z)")
    )


def _write_token(token: str, out: Path | None) -> None:
    if out is None:
        print(token)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    print(f"token written to {out} (mode 0600): copy it to the station's token file", file=sys.stderr)


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help="run the HTTP service")
    _db(s)
    d, sd = Limits(), ServerLimits()
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--ssl-certfile")
    s.add_argument("--ssl-keyfile")
    s.add_argument("--public-rate", type=float, default=d.public_rate, help="requests/s per address (0: off)")
    s.add_argument("--public-burst", type=int, default=d.public_burst)
    s.add_argument("--station-rate", type=float, default=d.station_rate, help="requests/s per token (0: off)")
    s.add_argument("--station-burst", type=int, default=d.station_burst)
    s.add_argument("--max-in-flight", type=int, default=d.max_in_flight, help="requests in progress")
    s.add_argument("--max-connections", type=int, default=sd.max_connections)
    s.add_argument("--read-timeout", type=float, default=sd.read_timeout, help="seconds to receive a request")
    s.add_argument("--keep-alive", type=int, default=sd.keep_alive)
    s.add_argument(
        "--impact-factors",
        type=Path,
        help="the network's impact factor table (TOML, as certs/data/impact_factors.toml); default ADEME's",
    )
    s.add_argument(
        "--forwarded-allow-ips",
        help="addresses of the reverse proxies whose X-Forwarded-For is trusted (rate limits per client)",
    )


def _db(q: argparse.ArgumentParser) -> None:
    q.add_argument("--db", default=_default_db(), help="SQLAlchemy URL (sqlite:///..., postgresql://...)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="station-hub", description="Tabula traceability hub")
    sub = p.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _db(sub.add_parser("migrate", help="create or upgrade the database schema"))

    o = sub.add_parser("org", help="organisations")
    osub = o.add_subparsers(dest="org_command", required=True)
    oa = osub.add_parser("add", help="register an organisation's public key")
    _db(oa)
    oa.add_argument("--name", required=True, help="the name lookups show (not the endorsement's)")
    oa.add_argument("--pem", type=Path, required=True, help="`station keys export --org` output")
    orv = osub.add_parser("revocations", help="hold an organisation's signed revocation list and serve it")
    _db(orv)
    orv.add_argument("file", type=Path, help="`station keys revoke` output (revocations.json)")

    lk = sub.add_parser("log-key", help="print the transparency log's public key (station verify --log)")
    _db(lk)
    lk.add_argument("--out", type=Path, help="write it to this file instead of stdout")

    e = sub.add_parser("enroll", help="enroll a station from its organisation's endorsement")
    _db(e)
    e.add_argument("--endorsement", type=Path, required=True, help="`station keys endorse` output")
    e.add_argument("--replace", action="store_true", help="revoke the active key enrolled under this id")
    e.add_argument("--expires", help="token lifetime (90d, 12h) or expiry date")
    e.add_argument("--token-out", type=Path, help="write the token here (0600) instead of stdout")

    t = sub.add_parser("token", help="issue a new token to a station (the old one stops working)")
    _db(t)
    t.add_argument("station", help="key fingerprint (or unique prefix), or an unambiguous station id")
    t.add_argument("--expires", help="token lifetime (90d, 12h) or expiry date")
    t.add_argument("--token-out", type=Path)

    r = sub.add_parser("revoke", help="refuse every further upload from a station key")
    _db(r)
    r.add_argument("station", help="key fingerprint (or unique prefix), or an unambiguous station id")
    r.add_argument("--reason", default="", help="recorded and published with the revocation")
    r.add_argument("--since", help="when the key stopped being trustworthy (ISO date/time, UTC); default now")

    ls = sub.add_parser("stations", help="list enrolled stations")
    _db(ls)
    ls.add_argument("--json", action="store_true")

    f = sub.add_parser("forget", help="remove a certificate's personal data (donor's request)")
    _db(f)
    f.add_argument("certificate_id")
    _staff_parser(sub)
    _lot_report_parser(sub)
    rt = sub.add_parser("retention", help="erase the donor contact of lots closed --days ago or more")
    _db(rt)
    rt.add_argument("--days", type=int, default=RETENTION_DAYS, help=f"default {RETENTION_DAYS}")
    return p


def _lot_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lr = sub.add_parser(
        "lot-report", help="sign and render a lot's report (JSON + PDF) with the organisation key"
    )
    _db(lr)
    lr.add_argument("reference", help="the lot reference")
    lr.add_argument("--org-keys", type=Path, required=True, help="the organisation's key directory")
    lr.add_argument("--lang", choices=("fr", "en"), default="fr")
    lr.add_argument("--out", type=Path, required=True, help="directory for the .json and .pdf")
    link = lr.add_mutually_exclusive_group()
    link.add_argument("--donor-url", help="the lot's current donor page link (the report's QR code)")
    link.add_argument(
        "--new-donor-link", metavar="HUB_URL", help="mint a new donor link (replaces the old one)"
    )
    lr.add_argument("--impact-factors", type=Path, help="the network's impact factor table")


def _lot_report(args: argparse.Namespace) -> None:
    hub = Hub(args.db, impact_factors=args.impact_factors)
    try:
        report, json_path, pdf_path = lotreports.generate(
            hub,
            load_org_key(args.org_keys),
            args.reference,
            lang=args.lang,
            out=args.out,
            donor_url=args.donor_url,
            new_link_base=args.new_donor_link,
        )
    finally:
        hub.engine.dispose()
    print(f"lot report {report.report_id}: {len(report.devices)} device(s): {json_path} {pdf_path}")
    if args.new_donor_link:
        print(f"donor page: {report.donor_page}")


def _staff_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("staff", help="tokens of people: staff (lots) and coordinators (statistics)")
    ssub = st.add_subparsers(dest="staff_command", required=True)
    sa = ssub.add_parser("add", help="issue a staff token (printed once)")
    _db(sa)
    sa.add_argument("--name", required=True, help="who holds it (a person or a desk)")
    sa.add_argument("--role", required=True, choices=ROLES)
    sa.add_argument("--org", help="the organisation's key fingerprint (a coordinator without one: network)")
    sa.add_argument("--expires", help="token lifetime (365d) or expiry date")
    sa.add_argument("--token-out", type=Path)
    _db(ssub.add_parser("list", help="list staff tokens"))
    sr = ssub.add_parser("revoke", help="revoke a staff token")
    _db(sr)
    sr.add_argument("id", type=int)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (HubError, TabulaError) as exc:
        print(f"station-hub: {exc.diagnostics()}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # only `serve` needs the server (start-up time of the admin commands)

    from hub.app import create_app
    from hub.server import uvicorn_options

    limits = Limits(
        args.public_rate, args.public_burst, args.station_rate, args.station_burst, args.max_in_flight
    )
    server = ServerLimits(
        read_timeout=args.read_timeout, keep_alive=args.keep_alive, max_connections=args.max_connections
    )
    extra = (
        {"proxy_headers": True, "forwarded_allow_ips": args.forwarded_allow_ips}
        if args.forwarded_allow_ips
        else {}
    )
    uvicorn.run(
        create_app(Hub(args.db, impact_factors=args.impact_factors), limits),
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        log_level="info",
        **uvicorn_options(server),
        **extra,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    engine = make_engine(args.db)
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"the schema is up to date (revision {after})")
    else:
        print(f"schema upgraded from {before or 'an empty database'} to revision {after}")
    return 0


def _org(args: argparse.Namespace, hub: Hub) -> None:
    if args.org_command == "add":
        _, kid = hub.add_organisation(args.name, args.pem.read_bytes())
        print(f"organisation {args.name!r} registered (key {kid})")
        return
    created, rl, name = revocation_lists.accept(hub, args.file.read_bytes())
    state = "now served" if created else "already held"
    print(f"revocation list of {name!r} issued {rl.issued_at} ({len(rl.revoked)} key(s)): {state}")


def _log_key(args: argparse.Namespace, hub: Hub) -> None:
    kid, _, pem = hub.log.key()
    if args.out is None:
        sys.stdout.write(pem)
    else:
        args.out.write_text(pem)
    print(f"transparency log key {kid} (GET /api/v1/log/key.pem serves it too)", file=sys.stderr)


def _staff(args: argparse.Namespace, hub: Hub) -> None:
    if args.staff_command == "add":
        row, token = staff.add_staff(
            hub.session(), args.name, args.role, args.org, expires=expiry(args.expires)
        )
        print(f"staff token #{row.id} ({row.role}) for {row.name!r}", file=sys.stderr)
        _write_token(token, args.token_out)
    elif args.staff_command == "revoke":
        row = staff.revoke_staff(hub.session(), args.id)
        print(f"staff token #{row.id} of {row.name!r} revoked")
    else:
        for r in staff.list_staff(hub.session()):
            flag = f" REVOKED {r['revoked_at']}" if r["revoked_at"] else ""
            print(f"#{r['id']}\t{r['role']}\t{r['organisation']}\t{r['name']}{flag}")


def _retention(args: argparse.Namespace, hub: Hub) -> None:
    erased = lots.erase_contacts(hub, args.days)
    for lot in erased:
        print(f"lot {lot.reference!r}: donor contact erased")
    print(f"{len(erased)} lot(s) closed {args.days} day(s) ago or more had their donor contact erased")


def _admin(args: argparse.Namespace, hub: Hub) -> None:
    if args.command == "staff":
        _staff(args, hub)
    elif args.command == "retention":
        _retention(args, hub)
    elif args.command == "org":
        _org(args, hub)
    elif args.command == "log-key":
        _log_key(args, hub)
    elif args.command == "enroll":
        info, token = hub.enroll(
            args.endorsement.read_bytes(), replace=args.replace, expires=expiry(args.expires)
        )
        print(
            f"station {info.station_id!r} of {info.organisation!r} enrolled (key {info.kid})", file=sys.stderr
        )
        _write_token(token, args.token_out)
    elif args.command == "token":
        _write_token(hub.new_token(args.station, expires=expiry(args.expires)), args.token_out)
    elif args.command == "revoke":
        st = hub.revoke(args.station, args.reason, since=_since(args.since))
        print(f"station {st.station_id!r} (key {st.kid}) revoked: {st.revocation_reason}")
    elif args.command == "forget":
        cert = hub.redact(args.certificate_id)
        print(f"personal data of {cert.certificate_id} removed; its facts and SHA-256 {cert.digest} remain")
    elif args.command == "stations":
        rows = hub.stations()
        if args.json:
            print(json.dumps(rows, indent=2))
        for row in [] if args.json else rows:
            flag = f" REVOKED {row['revoked_at']}" if row["revoked"] else ""
            print(f"{row['station_id']}\t{row['organisation']}\t{row['kid']}{flag}")


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "migrate":
        return _migrate(args)
    if args.command == "lot-report":
        _lot_report(args)
        return 0
    hub = Hub(args.db)
    try:
        _admin(args, hub)
    finally:
        hub.engine.dispose()
    return 0
