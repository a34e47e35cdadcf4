"""``station sync``: upload the outbox to the hub now, show its status, or keep draining.

::

    station sync                      # drain now (exit 0 when everything was delivered)
    station sync --status [--json]    # pending / sent / rejected counts, last error, last success
    station sync --daemon             # drain every `interval` seconds, with backoff when the hub is down
    station sync --url https://hub.example.org --token-file /root/hub.token --save   # remember them

Exit codes: 0 everything delivered (or status shown), 3 something is still pending or was rejected
by the hub, 2 bad configuration, 4 another drain is running.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from host import paths
from station.sync.client import Backoff, DrainResult, SyncDaemon, SyncStatus, drain, status
from station.sync.config import load_config, save_config
from station.sync.outbox import Outbox

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_UNDELIVERED = 3
EXIT_BUSY = 4


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sync",
        help="upload signed certificates and reports to the traceability hub (or show the outbox)",
        description=(
            "Certificates and diagnostics reports are queued in a durable outbox as soon as they are "
            "written; this command uploads them (idempotently: a certificate is stored once however often "
            "it is sent). Settings come from $TABULA_HOME/sync.toml; the options override them."
        ),
    )
    p.add_argument("--status", action="store_true", help="show the outbox state; send nothing")
    p.add_argument("--url", help="the hub's base URL, e.g. https://hub.example.org")
    p.add_argument("--token-file", type=Path, help="file holding this station's token (mode 0600)")
    p.add_argument("--ca-bundle", type=Path, help="CA certificate(s) to trust for the hub's TLS")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--daemon", action="store_true", help="keep draining periodically until interrupted")
    p.add_argument("--interval", type=float, help="seconds between drains with --daemon")
    p.add_argument("--save", action="store_true", help="save --url/--token-file/--ca-bundle to sync.toml")
    p.add_argument("--requeue", action="store_true", help="put documents the hub rejected back in the queue")
    p.set_defaults(func=run)


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def print_status(st: SyncStatus, out: TextIO) -> None:
    out.write(f"hub:            {st.url or '(not configured)'}\n")
    out.write(f"pending:        {st.pending}\n")
    out.write(f"sent:           {st.sent}\n")
    out.write(f"rejected:       {st.rejected}\n")
    out.write(f"last success:   {_when(st.last_success_at)}\n")
    if st.last_error:
        out.write(f"last error:     {st.last_error} ({_when(st.last_error_at)})\n")
        if st.next_attempt_at is not None:
            out.write(
                f"next attempt:   {_when(st.next_attempt_at)} (after {st.consecutive_failures} failures)\n"
            )
    for r in st.rejected_items:
        out.write(f"rejected {r['kind']} {r['id']}: {r['error']}\n")


def _print_result(result: DrainResult, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(result.to_json()) + "\n")
        return
    if result.busy:
        out.write("another drain is running; try again later (station sync --status shows progress)\n")
        return
    out.write(f"sent {result.sent}, rejected {result.rejected}, still pending {result.pending}\n")
    if result.queued_from_disk:
        out.write(f"queued {result.queued_from_disk} certificate(s) found on disk but not in the outbox\n")
    if result.error:
        out.write(f"error: {result.error}\n")


def run(args: argparse.Namespace, out: TextIO = sys.stdout, home: Path | None = None) -> int:
    home = home if home is not None else paths.home()
    config = load_config(home).with_overrides(args.url, args.token_file, args.ca_bundle)
    if args.save:
        where = save_config(config, home)
        out.write(f"saved {where}\n")
    if args.requeue:
        with Outbox(home) as box:
            n = box.requeue_rejected()
        out.write(f"requeued {n} rejected document(s)\n")
    if args.status:
        st = status(home)
        if args.json:
            out.write(json.dumps(st.to_json()) + "\n")
        else:
            print_status(st, out)
        return EXIT_OK
    if args.daemon:
        return _daemon(args, home, config, out)
    result = drain(home, config, retries=2, backoff=Backoff(base=0.5, cap=5.0))
    _print_result(result, args.json, out)
    if result.busy:
        return EXIT_BUSY
    return EXIT_OK if result.complete and result.rejected == 0 else EXIT_UNDELIVERED


def _daemon(args: argparse.Namespace, home: Path, config: Any, out: TextIO) -> int:
    def report(result: DrainResult) -> None:
        if result.sent or result.rejected or result.error:
            _print_result(result, args.json, out)
            out.flush()

    daemon = SyncDaemon(home, config, interval=args.interval, on_result=report)

    def terminate(signum: int, frame: object) -> None:
        daemon.stop(timeout=0)

    signal.signal(signal.SIGTERM, terminate)
    try:
        daemon.run()
    except KeyboardInterrupt:
        daemon.stop(timeout=0)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m station.sync``: the same command, standalone."""
    from host.errors import TabulaError

    parser = argparse.ArgumentParser(prog="station")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sync", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except TabulaError as exc:
        print(f"station sync: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_CONFIG
    return code
