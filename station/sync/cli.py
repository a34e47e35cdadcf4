"""``station sync``: upload the outbox to the hub now, show its status, send refused documents again.

::

    station sync                      # drain now (exit 0 when everything was delivered)
    station sync --status [--json]    # counts, documents refused (with the hub's reason) or retrying
    station sync --requeue ID         # send a refused (or backing-off) document again, now
    station sync --requeue-all        # ... every one of them
    station sync --daemon             # drain every `interval` seconds, with backoff when the hub is down
    station sync --url https://hub.example.org --token-file /root/hub.token --save   # remember them

Exit codes: 0 everything delivered (or status shown), 3 something is still pending or was refused
by the hub in this run, or the hub's transparency log failed its consistency check (``LOG ALARM``),
2 bad configuration or an unknown document id, 4 another drain is running.

Each pass also keeps the hub's inclusion proof of every certificate (``<id>.log.json`` next to it)
and publishes the station's signed chain head (``chain-head.json``): :mod:`station.sync.logsync`.
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
from station.sync.config import SyncConfig, load_config, save_config
from station.sync.drain import Backoff, DrainResult, SyncDaemon, drain
from station.sync.errors import UnknownDocument
from station.sync.outbox import Outbox
from station.sync.state import SyncStatus, status

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_UNDELIVERED = 3
EXIT_BUSY = 4
_EVERY = "*"  # what a bare --requeue means: every refused or backing-off document


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
    p.add_argument(
        "--insecure-http",
        action="store_true",
        help="allow a plain http:// hub URL that is not loopback (the token travels in clear)",
    )
    p.add_argument("--deadline", type=float, help="seconds one upload may take in all (default 60)")
    p.add_argument("--batch", type=int, help="certificates per request (default 50; 1: one by one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--daemon", action="store_true", help="keep draining periodically until interrupted")
    p.add_argument("--interval", type=float, help="seconds between drains with --daemon")
    p.add_argument(
        "--save", action="store_true", help="save --url/--token-file/--ca-bundle/--insecure-http to sync.toml"
    )
    p.add_argument(
        "--requeue",
        nargs="?",
        action="append",
        const=_EVERY,
        metavar="ID",
        help="send document ID again (refused by the hub, or waiting out a backoff); repeatable; "
        "without ID: every one",
    )
    p.add_argument(
        "--requeue-all", action="store_true", help="send every refused or backing-off document again"
    )
    p.set_defaults(func=run)


def _when(ts: float | None) -> str:
    if ts is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def print_status(st: SyncStatus, out: TextIO) -> None:
    out.write(f"hub:            {st.url or '(not configured)'}\n")
    waiting = f" ({st.retrying} waiting to retry)" if st.retrying else ""
    out.write(f"pending:        {st.pending}{waiting}\n")
    out.write(f"sent:           {st.sent}\n")
    out.write(f"rejected:       {st.rejected}\n")
    out.write(f"last success:   {_when(st.last_success_at)}\n")
    _print_log_status(st, out)
    if st.last_error:
        out.write(f"last error:     {st.last_error} ({_when(st.last_error_at)})\n")
        if st.next_attempt_at is not None:
            out.write(
                f"next attempt:   {_when(st.next_attempt_at)} (after {st.consecutive_failures} failures)\n"
            )
    if st.rejected_items:
        out.write("refused by the hub (fix the cause, then: station sync --requeue ID, or --requeue-all):\n")
    for r in st.rejected_items:
        out.write(f"  {r['kind']} {r['id']} ({_when(r['at'])}): {r['error']}\n")
    if st.retrying_items:
        out.write("waiting to retry (station sync tries them now; --requeue ID resets the backoff):\n")
    for r in st.retrying_items:
        out.write(
            f"  {r['kind']} {r['id']}: {r['failures']} failure(s), next {_when(r['at'])}: {r['error']}\n"
        )
    listed = len(st.rejected_items) + len(st.retrying_items)
    if st.rejected + st.retrying > listed:
        out.write(f"  ... and {st.rejected + st.retrying - listed} more (station sync --status --json)\n")
    _print_lots(st, out)


_LOT_WORDS = {
    "unknown": "unknown to the hub (create it there; the records link to it once it exists)",
    "closed": "closed on the hub",
    "pending": "not checked yet (the hub could not be asked; every sync asks again)",
}


def _print_lots(st: SyncStatus, out: TextIO) -> None:
    """Lot references the technician gave that the hub does not know, has closed, or was not asked about."""
    if st.lots:
        out.write("lots to look at:\n")
    for lot in st.lots:
        detail = f": {lot['detail']}" if lot["detail"] else ""
        out.write(f"  {lot['reference']} {_LOT_WORDS.get(lot['state'], lot['state'])}{detail}\n")


def _print_log_status(st: SyncStatus, out: TextIO) -> None:
    """The hub's transparency log and the station's chain head, as the outbox records them."""
    if st.sent:
        out.write(f"log proofs:     kept for every certificate the hub holds but {st.without_proof}\n")
    if st.chain_head_sequence is not None:
        out.write(f"chain head:     #{st.chain_head_sequence} published {_when(st.chain_head_at)}\n")
    if st.log_error:
        out.write(f"log problem:    {st.log_error}\n")
    if st.log_alarm:
        out.write(f"LOG ALARM:      {st.log_alarm}\n")


def _print_result(result: DrainResult, as_json: bool, out: TextIO, refused: int) -> None:
    if as_json:
        out.write(json.dumps(result.to_json() | {"refused_in_outbox": refused}) + "\n")
        return
    if result.busy:
        out.write("another drain is running; try again later (station sync --status shows progress)\n")
        return
    out.write(f"sent {result.sent}, rejected {result.rejected}, still pending {result.pending}")
    out.write(f" ({result.retrying} waiting to retry)\n" if result.retrying else "\n")
    if result.queued_from_disk:
        out.write(f"queued {result.queued_from_disk} certificate(s) found on disk but not in the outbox\n")
    if refused:
        out.write(f"{refused} document(s) refused by the hub: station sync --status shows why\n")
    if result.proofs_kept or result.chain_head is not None:
        head = f"; chain head #{result.chain_head} published" if result.chain_head is not None else ""
        out.write(f"kept {result.proofs_kept} inclusion proof(s) of the hub's log{head}\n")
    if result.log_error:
        out.write(f"log problem: {result.log_error}\n")
    if result.log_alarm:
        out.write(f"LOG ALARM: {result.log_alarm}\n")
    if result.lots_checked:
        out.write(f"the hub answered about {result.lots_checked} lot reference(s) (station sync --status)\n")
    if result.error:
        out.write(f"error: {result.error}\n")


def requeue(ids: list[str], every: bool, home: Path, out: TextIO) -> None:
    """Make refused (or backing-off) documents due now; raises :class:`UnknownDocument` for a bad id."""
    with Outbox(home) as box:
        if every:
            out.write(f"requeued {box.requeue()} document(s)\n")
            return
        for doc_id in ids:
            found = box.find(doc_id)
            if not found:
                raise UnknownDocument(f"no document {doc_id} in the outbox")
            if all(state == "sent" for _, state in found):
                out.write(f"{doc_id} was already delivered to the hub: nothing to send again\n")
            elif box.requeue(doc_id):
                out.write(f"requeued {doc_id}\n")
            else:
                out.write(f"{doc_id} is already queued\n")


def run(args: argparse.Namespace, out: TextIO = sys.stdout, home: Path | None = None) -> int:
    home = home if home is not None else paths.home()
    config = load_config(home).with_overrides(
        args.url, args.token_file, args.ca_bundle, args.insecure_http, args.deadline, args.batch
    )
    if args.save:
        where = save_config(config, home)
        out.write(f"saved {where}\n")
    ids = args.requeue or []
    if ids or args.requeue_all:
        requeue([i for i in ids if i != _EVERY], args.requeue_all or _EVERY in ids, home, out)
    if args.status:
        st = status(home)
        if args.json:
            out.write(json.dumps(st.to_json()) + "\n")
        else:
            print_status(st, out)
        return EXIT_OK
    config.check_transport()  # plain http:// to another host: refuse here, loudly (exit 2)
    if args.daemon:
        return _daemon(args, home, config, out)
    return _drain_now(home, config, args.json, out)


def _drain_now(home: Path, config: SyncConfig, as_json: bool, out: TextIO) -> int:
    result = drain(home, config, retries=2, backoff=Backoff(base=0.5, cap=5.0))
    _print_result(result, as_json, out, 0 if result.busy else status(home).rejected)
    if result.busy:
        return EXIT_BUSY
    if result.config_error:
        return EXIT_CONFIG
    ok = result.complete and result.rejected == 0 and result.log_alarm is None
    return EXIT_OK if ok else EXIT_UNDELIVERED


def _daemon(args: argparse.Namespace, home: Path, config: SyncConfig, out: TextIO) -> int:
    def report(result: DrainResult) -> None:
        if result.sent or result.rejected or result.error:
            _print_result(result, args.json, out, 0)
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
