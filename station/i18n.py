"""Languages of the station's screens: gettext catalogs, and which language to speak.

The catalogs live in ``station/locale/<lang>/LC_MESSAGES/tabula.po``; the compiled ``tabula.mo``
beside each one is committed, so a clean clone, ``pip install .`` and the live image need no
compiler.  Babel, a development tool, extracts the strings and compiles the catalogs (``./dev
i18n``, see ``tools/i18n.py``); a test checks that they are complete and up to date.  At run time
the standard library's :mod:`gettext` reads them.

Which language: an explicit choice (command line) wins, then the station's settings, then the boot
parameter ``tabula.lang=fr`` on the kernel command line (the live image), then the locale
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``), then English.

This module does not import Textual: the core and the CLI may use it.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "tabula"
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
CMDLINE_KEY = "tabula.lang"


class CatalogError(ValueError):
    """An unknown language was asked for."""


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
