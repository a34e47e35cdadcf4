"""Finding English left in what a French-speaking technician is shown.

Two detectors, both needed:

* every string of the station's catalog that has a French translation: its English text (the literal
  parts of the msgid, long enough to mean something) must not appear as such;
* a list of common English words, found as whole words, after what may legitimately stay in English
  is removed: file paths, identifiers, hexadecimal, and the proper nouns and standard names of
  :data:`ALLOWED` (NIST SP 800-88, SMART, Tabula, DoD 5220.22-M...).
"""

from __future__ import annotations

import re
from functools import cache

from tools.i18n import po_files, read

#: Proper nouns, standard and product names, commands and units that stay as they are in French.
ALLOWED = (
    "NIST SP 800-88",
    "Clear",
    "Purge",
    "Destroy",
    "Tabula",
    "SMART",
    "WWN",
    "PSID",
    "TCG Opal",
    "NVMe",
    "SSD",
    "HDD",
    "USB",
    "SD/MMC",
    "AES-128-CTR",
    "DoD 5220.22-M",
    "ECE",
    "Gutmann",
    "RCMP TSSIT OPS-II",
    "HMG IS5",
    "BSI VSITR",
    "ISM",
    "MFM/RLL",
    "SHA-256",
    "station verify",
    "station destroy",
    "station erase",
    "--method",
    "--by",
    "shred",
    "drill",
    "crush",
    "degauss",
    "incinerate",
    "loop",
)

#: Common English words that never belong in French text (whole words, case-insensitive).
ENGLISH_WORDS = frozenset(
    [
        "the",
        "and",
        "with",
        "without",
        "from",
        "into",
        "onto",
        "your",
        "you",
        "this",
        "that",
        "these",
        "those",
        "which",
        "what",
        "when",
        "while",
        "where",
        "will",
        "would",
        "could",
        "should",
        "cannot",
        "can't",
        "don't",
        "doesn't",
        "isn't",
        "is",
        "are",
        "was",
        "were",
        "been",
        "being",
        "has",
        "have",
        "had",
        "not",
        "only",
        "every",
        "each",
        "other",
        "again",
        "before",
        "after",
        "until",
        "then",
        "than",
        "there",
        "here",
        "yes",
        "drive",
        "drives",
        "disk",
        "disks",
        "erase",
        "erased",
        "erasing",
        "erasure",
        "wipe",
        "wiped",
        "select",
        "selected",
        "settings",
        "quit",
        "back",
        "follow",
        "details",
        "certificate",
        "certificates",
        "report",
        "reports",
        "running",
        "stopped",
        "interrupted",
        "failed",
        "verified",
        "unverified",
        "passed",
        "pass",
        "sector",
        "sectors",
        "written",
        "read",
        "check",
        "checked",
        "method",
        "print",
        "printer",
        "printed",
        "done",
        "left",
        "speed",
        "step",
        "steps",
        "error",
        "errors",
        "unknown",
        "none",
        "found",
        "please",
        "press",
        "enter",
        "start",
        "started",
        "stop",
        "signed",
        "destroyed",
        "technician",
        "witness",
        "drive's",
        "healthy",
        "failing",
        "removed",
        "idle",
        "bay",
        "model",
        "serial",
        "size",
        "health",
        "status",
        "job",
        "jobs",
        "folder",
        "next",
        "now",
        "why",
    ]
)

_PATHS = re.compile(r"(?:/[\w.@:+-]+)+/?|\b[\w.-]+\.(?:img|pdf|json|toml|jpg|log)\b")
_IDS = re.compile(
    r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{8,}\b|\bloop\d+\b|\bsd[a-z]+\b"
)
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def _without_allowed(text: str) -> str:
    text = _PATHS.sub(" ", text)
    text = _IDS.sub(" ", text)
    for name in sorted(ALLOWED, key=len, reverse=True):
        text = text.replace(name, " ")
    return text


@cache
def _untranslated_chunks() -> tuple[str, ...]:
    """The English literal parts of every translated msgid (12 characters or more, with a space)."""
    chunks: set[str] = set()
    for po in po_files():
        for message in read(po):
            if not message.id or not message.string or message.string == message.id:
                continue
            for part in re.split(r"\{[^}]*\}", str(message.id)):
                part = part.strip(" :;,.()\n")
                if len(part) >= 12 and " " in part and part not in str(message.string):
                    chunks.add(part)
    return tuple(sorted(chunks))


def english_left(text: str) -> list[str]:
    """What looks English in ``text``: catalog strings shown untranslated, then English words."""
    found = [chunk for chunk in _untranslated_chunks() if chunk in text]
    cleaned = _without_allowed(text)
    words = {w.lower() for w in _WORD.findall(cleaned)}
    found += sorted(w for w in words if w in ENGLISH_WORDS)
    return found


def context(text: str, needle: str, width: int = 60) -> str:
    """Where ``needle`` is in ``text`` (for an assertion's message)."""
    m = re.search(rf"(?i)\b{re.escape(needle)}\b", text) or re.search(re.escape(needle), text)
    if m is None:
        return needle
    return text[max(0, m.start() - width) : m.end() + width].replace("\n", " | ")
