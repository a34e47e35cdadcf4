"""Terminal and JSON output shared by ``station verify`` and ``station log``: nothing a file name or a
signed field holds can draw on the terminal, and the JSON is always valid ASCII."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

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
