"""The ``station`` command line.

``station`` with no arguments starts the TUI (``station --lang fr``); subcommands are the headless interface for benches,
scripts and the live image.  Exit codes (``station erase``): 0 erased and verified, 2 refused or bad input (nothing
written), 3 erasure or verification failed, 4 interrupted, 5 written but not verified
(``--verify none``: no NIST level is claimed), 1 internal error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from certs import cli as certs_cli
from diagnostics import cli as diagnostics_cli
from host import paths
from host.errors import BadInput, TabulaError
from station import __version__, autorun, commands, demo, probekit
from station.errors import Refused, StationError
from station.options import EXIT_INTERNAL, EXIT_REFUSED
from station.sync import cli as sync_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station", description="Tabula: verified drive erasure, diagnostics and signed certificates"
    )
    parser.add_argument("--version", action="version", version=f"tabula {__version__}")
    parser.add_argument(
        "--include-loop", action="store_true", help="TUI: offer loop devices too (tests, demo)"
    )
    parser.add_argument(
        "--lang", choices=("en", "fr"), default=None, help="TUI language (default: settings, locale)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    certs_cli.register(sub)
    diagnostics_cli.register(sub)
    demo.register(sub)
    sync_cli.register(sub)
    autorun.register(sub)
    probekit.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # Start-up time: only the TUI needs Textual; every other command starts without it.
        from station.tui.run import run as run_tui

        return run_tui(jobs_root=paths.jobs_dir(), include_loop=args.include_loop, lang=args.lang)
    try:
        code: int = args.func(args)
        return code
    except Refused as exc:
        print(f"station: refused: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED
    except BadInput as exc:
        print(f"station: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED
    except TabulaError as exc:
        print(f"station: {exc.diagnostics()}", file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, StationError) else EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
