"""Languages of the station's screens: gettext catalogs, and which language to speak.

The catalogs live in ``station/locale/<lang>/LC_MESSAGES/tabula.po``; the compiled ``tabula.mo``
beside each one is shipped in the repository so a clean clone works without Debian's ``msgfmt``.
:func:`compile_mo` is a small pure-Python compiler (the GNU .mo layout: header, two string tables,
no hash table); ``python -m station.i18n`` rebuilds every ``.mo`` from its ``.po``, and a test checks
that the shipped files are up to date.

Which language: an explicit choice (command line) wins, then the station's settings, then the boot
parameter ``tabula.lang=fr`` on the kernel command line (the live image), then the locale
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), then English.

This module does not import Textual: the core and the CLI may use it.
"""

from __future__ import annotations

import ast
import gettext
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "tabula"
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CMDLINE_KEY = "tabula.lang"


class CatalogError(ValueError):
    """A .po file this compiler cannot read."""


# --------------------------------------------------------------------------------------------------
# Choosing the language


def normalize(value: str | None) -> str | None:
    """``fr_FR.UTF-8`` -> ``fr``; None for anything that is not one of :data:`LANGUAGES`."""
    if not value:
        return None
    code = value.strip().split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()
    return code if code in LANGUAGES else None


def cmdline_language(path: Path = Path("/proc/cmdline")) -> str | None:
    """The language named by ``tabula.lang=xx`` on the kernel command line, if any."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key == CMDLINE_KEY:
            return normalize(value)
    return None


def locale_language(environ: Mapping[str, str]) -> str | None:
    """The language of the process locale, as gettext reads it (first set variable wins)."""
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(var)
        if value:
            # LANGUAGE may list several: "fr:en"
            for part in value.split(":"):
                lang = normalize(part)
                if lang is not None:
                    return lang
            if value not in ("C", "POSIX", "C.UTF-8"):
                continue
            return None
    return None


def choose_language(
    explicit: str | None = None,
    setting: str | None = None,
    *,
    cmdline: Path = Path("/proc/cmdline"),
    environ: Mapping[str, str] | None = None,
) -> str:
    """The language to speak: explicit, settings, boot parameter, locale, then English."""
    for candidate in (normalize(explicit), normalize(setting), cmdline_language(cmdline)):
        if candidate is not None:
            return candidate
    return locale_language(os.environ if environ is None else environ) or DEFAULT_LANGUAGE


# --------------------------------------------------------------------------------------------------
# Translating


def translations(lang: str, locale_dir: Path = LOCALE_DIR) -> gettext.NullTranslations:
    """The catalog of ``lang`` (English is the source language: no catalog, strings as written)."""
    if lang == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    mo = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    with open(mo, "rb") as f:
        return gettext.GNUTranslations(f)


_current: gettext.NullTranslations = gettext.NullTranslations()
_current_lang = DEFAULT_LANGUAGE


def set_language(lang: str) -> None:
    """Switch every later :func:`_` call to ``lang``."""
    global _current, _current_lang
    if lang not in LANGUAGES:
        raise CatalogError(f"unknown language {lang!r} (known: {', '.join(LANGUAGES)})")
    _current = translations(lang)
    _current_lang = lang


def current_language() -> str:
    return _current_lang


def _(message: str) -> str:
    """The message in the current language."""
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.ngettext(singular, plural, n)


def C_(context: str, message: str) -> str:
    """The message in the current language, in ``context`` (``msgctxt``): one English word, two meanings."""
    return _current.pgettext(context, message)


def N_(message: str) -> str:
    """Marks a string for translation where it is defined; :func:`_` translates it where it is shown."""
    return message


# --------------------------------------------------------------------------------------------------
# .po -> .mo


def _unquote(token: str, where: str) -> str:
    token = token.strip()
    if not (len(token) >= 2 and token[0] == '"' and token[-1] == '"'):
        raise CatalogError(f"{where}: expected a quoted string, got {token!r}")
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError) as exc:
        raise CatalogError(f"{where}: bad string {token!r}") from exc
    if not isinstance(value, str):
        raise CatalogError(f"{where}: bad string {token!r}")
    return value


def parse_po(text: str, source: str = "<po>") -> dict[str, str]:
    """msgid -> msgstr of a .po file (the header has msgid ""); untranslated and fuzzy entries are left out.

    Supports comments, multi-line strings, ``msgctxt`` (stored as ``ctxt\\x04msgid`` like GNU gettext)
    and plural forms (stored NUL-joined).
    """
    catalog: dict[str, str] = {}
    entry: dict[str, list[str]] = {}
    key: str | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal entry, key, fuzzy
        if "msgid" in entry:
            msgid = "".join(entry["msgid"])
            if "msgid_plural" in entry:
                msgid += "\x00" + "".join(entry["msgid_plural"])
                forms = sorted(k for k in entry if k.startswith("msgstr["))
                msgstr = "\x00".join("".join(entry[k]) for k in forms)
            else:
                msgstr = "".join(entry.get("msgstr", []))
            if "msgctxt" in entry:
                msgid = "".join(entry["msgctxt"]) + "\x04" + msgid
            if msgstr.replace("\x00", "") and (not fuzzy or msgid == ""):
                catalog[msgid] = msgstr
        entry, key, fuzzy = {}, None, False

    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{source}:{n}"
        if not line:
            flush()
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                if "msgid" in entry:
                    flush()
                fuzzy = True
            continue
        if line.startswith('"'):
            if key is None:
                raise CatalogError(f"{where}: string continuation without a keyword")
            entry[key].append(_unquote(line, where))
            continue
        word, _sep, rest = line.partition(" ")
        if word in ("msgctxt", "msgid") and "msgstr" in "".join(entry):
            flush()
        if word not in ("msgctxt", "msgid", "msgid_plural", "msgstr") and not word.startswith("msgstr["):
            raise CatalogError(f"{where}: unknown keyword {word!r}")
        key = word
        entry[key] = [_unquote(rest, where)]
    flush()
    return catalog


def compile_mo(catalog: Mapping[str, str]) -> bytes:
    """A GNU .mo file (little-endian, revision 0, no hash table) for ``catalog``."""
    keys = sorted(catalog, key=lambda k: k.encode())
    ids = [k.encode() for k in keys]
    strs = [catalog[k].encode() for k in keys]
    n = len(keys)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + n * 8
    data_start = strs_table + n * 8
    id_offsets: list[tuple[int, int]] = []
    str_offsets: list[tuple[int, int]] = []
    blob = bytearray()
    for s in ids:
        id_offsets.append((len(s), data_start + len(blob)))
        blob += s + b"\x00"
    for s in strs:
        str_offsets.append((len(s), data_start + len(blob)))
        blob += s + b"\x00"
    out = bytearray(struct.pack("<7I", 0x950412DE, 0, n, ids_table, strs_table, 0, data_start))
    for length, offset in id_offsets:
        out += struct.pack("<2I", length, offset)
    for length, offset in str_offsets:
        out += struct.pack("<2I", length, offset)
    out += blob
    return bytes(out)


def catalogs(locale_dir: Path = LOCALE_DIR) -> list[tuple[Path, Path]]:
    """(.po, .mo) pairs of every shipped language."""
    return [(po, po.with_suffix(".mo")) for po in sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))]


def build(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Compile every .po under ``locale_dir``; returns the .mo files written."""
    written = []
    for po, mo in catalogs(locale_dir):
        mo.write_bytes(compile_mo(parse_po(po.read_text(encoding="utf-8"), str(po))))
        written.append(mo)
    return written


def extract(files: list[Path]) -> list[str]:
    """Every literal passed to ``_()``, ``N_()`` or ``C_()`` in these Python files, in order of first use.

    ``C_("verdict", "recycle")`` is returned as ``"verdict\\x04recycle"``, as GNU gettext keys it.
    """
    found: dict[str, None] = {}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.setdefault(node.args[0].value, None)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "C_"
                and len(node.args) == 2
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
            ):
                ctx, msg = (a.value for a in node.args)  # type: ignore[attr-defined]
                found.setdefault(f"{ctx}\x04{msg}", None)
            elif (  # key hints: Binding("e", "erase", "Erase")
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Binding"
                and len(node.args) >= 3
                and isinstance(node.args[2], ast.Constant)
                and isinstance(node.args[2].value, str)
            ):
                found.setdefault(node.args[2].value, None)
    return list(found)


def source_files() -> list[Path]:
    """The files whose strings are translated: the TUI and this module's users."""
    here = Path(__file__).resolve().parent
    return sorted((here / "tui").rglob("*.py"))


def main(argv: list[str] | None = None) -> int:
    """``python -m station.i18n`` compiles the catalogs; ``... missing`` lists untranslated strings."""
    args = argv or []
    if args[:1] == ["missing"]:
        missing = 0
        for po, _mo in catalogs():
            catalog = parse_po(po.read_text(encoding="utf-8"), str(po))
            for msgid in extract(source_files()):
                if msgid not in catalog:
                    missing += 1
                    print(f"{po}: missing {msgid!r}")
        return 1 if missing else 0
    for mo in build():
        print(f"wrote {mo}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
