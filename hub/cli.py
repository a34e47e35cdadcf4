"""``station-hub``: run the traceability service and administer it.

::

    station-hub serve --db URL [--host 127.0.0.1] [--port 8080] [--ssl-certfile F --ssl-keyfile F]
    station-hub org add --db URL --name "Atelier Réemploi" --pem atelier-org.pem
    station-hub enroll --db URL --endorsement bench-1.endorsement.json --token-out bench-1.token
    station-hub token --db URL STATION --token-out F     # replace a station's token
    station-hub revoke --db URL STATION
    station-hub stations --db URL [--json]

``--db`` defaults to ``$TABULA_HUB_DB`` or ``sqlite:///tabula-hub.sqlite3``; PostgreSQL URLs look
like ``postgresql://user@host/dbname``.  Tokens are written to ``--token-out`` (mode 0600) or, without
it, printed once on stdout; the hub keeps only their SHA-256 and never logs them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from host.errors import TabulaError
from hub.errors import HubError
from hub.service import Hub


def _default_db() -> str:
    return os.environ.get("TABULA_HUB_DB", "sqlite:///tabula-hub.sqlite3")


def _write_token(token: str, out: Path | None) -> None:
    if out is None:
        print(token)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    print(f"token written to {out} (mode 0600): copy it to the station's token file", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="station-hub", description="Tabula traceability hub")
    sub = p.add_subparsers(dest="command", required=True)

    def db(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=_default_db(), help="SQLAlchemy URL (sqlite:///..., postgresql://...)")

    s = sub.add_parser("serve", help="run the HTTP service")
    db(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--ssl-certfile")
    s.add_argument("--ssl-keyfile")

    o = sub.add_parser("org", help="organisations")
    osub = o.add_subparsers(dest="org_command", required=True)
    oa = osub.add_parser("add", help="register an organisation's public key")
    db(oa)
    oa.add_argument("--name", required=True)
    oa.add_argument("--pem", type=Path, required=True, help="`station keys export --org` output")

    e = sub.add_parser("enroll", help="enroll a station from its organisation's endorsement")
    db(e)
    e.add_argument("--endorsement", type=Path, required=True, help="`station keys endorse` output")
    e.add_argument("--token-out", type=Path, help="write the token here (0600) instead of stdout")

    t = sub.add_parser("token", help="issue a new token to a station (the old one stops working)")
    db(t)
    t.add_argument("station", help="station id or key fingerprint")
    t.add_argument("--token-out", type=Path)

    r = sub.add_parser("revoke", help="refuse every further upload from a station")
    db(r)
    r.add_argument("station")

    ls = sub.add_parser("stations", help="list enrolled stations")
    db(ls)
    ls.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (HubError, TabulaError) as exc:
        print(f"station-hub: {exc.diagnostics()}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        import uvicorn

        from hub.app import create_app

        app = create_app(Hub(args.db))
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
            server_header=False,
            log_level="info",
        )
        return 0
    hub = Hub(args.db)
    if args.command == "org":
        _, kid = hub.add_organisation(args.name, args.pem.read_bytes())
        print(f"organisation {args.name!r} registered (key {kid})")
    elif args.command == "enroll":
        info, token = hub.enroll(args.endorsement.read_bytes())
        print(
            f"station {info.station_id!r} of {info.organisation!r} enrolled (key {info.kid})", file=sys.stderr
        )
        _write_token(token, args.token_out)
    elif args.command == "token":
        _write_token(hub.new_token(args.station), args.token_out)
    elif args.command == "revoke":
        hub.revoke(args.station)
        print(f"station {args.station!r} revoked")
    elif args.command == "stations":
        rows = hub.stations()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                flag = " REVOKED" if row["revoked"] else ""
                print(f"{row['station_id']}\t{row['organisation']}\t{row['kid']}{flag}")
    return 0
