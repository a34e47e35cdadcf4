"""Terminal and JSON output shared by ``station verify`` and ``station log``: nothing a file name or a
signed field holds can draw on the terminal, and the JSON is always valid ASCII."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, NoReturn

_VISIBLE_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def escape_text(text: str) -> str:
    r"""``text`` safe to print on a terminal: control, bidi and invisible characters as visible escapes.

    C0/C1 controls, DEL, bidirectional overrides and isolates, zero-width and other format characters,
    line/paragraph separators, lone surrogates (undecodable file-name bytes) and private or unassigned
    code points become ``\xNN`` / ``\uNNNN`` / ``\UNNNNNNNN``; a backslash becomes ``\\``.  A file
    name can therefore never move the cursor, recolour or reorder what follows it.
    """
    out: list[str] = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif unicodedata.category(c) in _VISIBLE_CATEGORIES:
            n = ord(c)
            out.append(f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
        else:
            out.append(c)
    return "".join(out)


def say(line: str, stream: Any = None) -> None:
    """Print one already-escaped line in whatever encoding the terminal has (never fails on a character)."""
    out = stream or sys.stdout
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(line.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def json_safe(value: Any) -> Any:
    r"""Strings without lone surrogates (undecodable path bytes become ``\xNN``): always valid JSON text."""
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "backslashreplace")
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(json_safe(doc), indent=2, ensure_ascii=True) + "\n")


class JsonUsageParser(argparse.ArgumentParser):
    """argparse, except that a usage error on a command line asking for ``--json`` still prints one JSON
    document on stdout (exit 2, as every usage error): a script reading the JSON never gets plain text."""

    json_errors = False  # set by :meth:`expect_json` for the command line being parsed (subparsers share it)

    @classmethod
    def expect_json(cls, argv: Sequence[str] | None) -> None:
        JsonUsageParser.json_errors = "--json" in (sys.argv[1:] if argv is None else argv)

    def error(self, message: str) -> NoReturn:
        if JsonUsageParser.json_errors:
            print_json(
                {
                    "ok": False,
                    "checked": 0,
                    "valid": 0,
                    "error": {"reason": "usage_error", "message": f"{self.prog}: {message}"},
                    "results": [],
                }
            )
        super().error(message)
