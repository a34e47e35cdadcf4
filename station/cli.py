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

from certs.textout import JsonUsageParser
from host import paths
from host.errors import BadInput, TabulaError
from station import __version__
from station.errors import Refused, StationError
from station.i18n import _, choose_language, set_language, settings_language, tr
from station.options import EXIT_INTERNAL, EXIT_REFUSED

#: The options of ``station`` itself (the TUI's); any other word on the command line is (or should be)
#: a subcommand, and only then are the subcommands' modules imported.
_TUI_FLAGS = frozenset({"--include-loop"})
_TUI_OPTIONS = frozenset({"--lang"})


def build_parser(*, commands: bool = True) -> argparse.ArgumentParser:
    """``station``'s parser; ``commands=False`` leaves the subcommands out (the TUI's start-up)."""
    parser = JsonUsageParser(
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
    if commands:
        _register_commands(sub)
    return parser


def _register_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # Start-up time: the subcommands' modules (certificates, lot reports, diagnostics, sync, the demo,
    # the bench mode) cost the live image's boot-to-TUI seconds under emulation; the TUI needs none.
    from certs import cli as certs_cli
    from diagnostics import cli as diagnostics_cli
    from station import autorun, commands, demo, probekit
    from station.sync import cli as sync_cli

    commands.register(sub)
    certs_cli.register(sub)
    diagnostics_cli.register(sub)
    demo.register(sub)
    sync_cli.register(sub)
    autorun.register(sub)
    probekit.register(sub)


def starts_tui(argv: Sequence[str]) -> bool:
    """True when the command line holds only ``station``'s own options: no subcommand, no ``--help``."""
    words = iter(argv)
    for word in words:
        if word in _TUI_FLAGS:
            continue
        if word in _TUI_OPTIONS:
            next(words, None)
            continue
        if word.partition("=")[0] in _TUI_OPTIONS and "=" in word:
            continue
        return False
    return True


def explain(exc: TabulaError) -> str:
    """An error's message and hint, in the technician's language where Tabula knows the words."""
    text = tr(exc.message)
    return f"{text}\n  -> {tr(exc.hint)}" if exc.hint else text


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(commands=not starts_tui(words))
    JsonUsageParser.expect_json(argv)
    args = parser.parse_args(argv)
    # Human output speaks the technician's language: --lang, the settings, tabula.lang=, the locale.
    set_language(choose_language(getattr(args, "lang", None), settings_language(paths.settings_file())))
    if args.command is None:
        # Start-up time: only the TUI needs Textual; every other command starts without it.
        from station.tui.run import run as run_tui

        return run_tui(jobs_root=paths.jobs_dir(), include_loop=args.include_loop, lang=args.lang)
    try:
        code: int = args.func(args)
        return code
    except Refused as exc:
        print("station: " + _("refused: {why}").format(why=explain(exc)), file=sys.stderr)
        return EXIT_REFUSED
    except BadInput as exc:
        print(f"station: {explain(exc)}", file=sys.stderr)
        return EXIT_REFUSED
    except TabulaError as exc:
        print(f"station: {explain(exc)}", file=sys.stderr)
        return EXIT_REFUSED if isinstance(exc, StationError) else EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
