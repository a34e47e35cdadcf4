"""Languages: the .mo compiler, the shipped catalogs, and how the language is chosen."""

from __future__ import annotations

import gettext
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from erase.methods import METHODS
from station import i18n
from station.i18n import catalogs, choose_language, compile_mo, extract, parse_po, source_files

FR_PO = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "tabula.po"


def test_shipped_mo_is_compiled_from_the_po() -> None:
    pairs = catalogs()
    assert [po for po, _mo in pairs] == [FR_PO]
    for po, mo in pairs:
        assert mo.read_bytes() == compile_mo(parse_po(po.read_text(encoding="utf-8"))), (
            f"{mo} is stale: run python -m station.i18n"
        )


def test_compiled_catalog_reads_back_through_gettext() -> None:
    catalog = {"": "Content-Type: text/plain; charset=UTF-8\n", "Erase": "Effacer", "Drive": "Disque"}
    t = gettext.GNUTranslations(io.BytesIO(compile_mo(catalog)))
    assert t.gettext("Erase") == "Effacer"
    assert t.gettext("Drive") == "Disque"
    assert t.gettext("Unknown") == "Unknown"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="Debian's gettext is not installed")
def test_msgfmt_accepts_the_po_and_agrees_with_our_compiler(tmp_path: Path) -> None:
    out = tmp_path / "gnu.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(out), str(FR_PO)], check=True, capture_output=True)
    gnu = gettext.GNUTranslations(io.BytesIO(out.read_bytes()))
    ours = i18n.translations("fr")
    for msgid in parse_po(FR_PO.read_text(encoding="utf-8")):
        if msgid:
            assert ours.gettext(msgid) == gnu.gettext(msgid)


def test_parse_po_handles_continuations_context_plurals_and_fuzzy() -> None:
    po = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

# comment
msgid "long "
"line"
msgstr "ligne "
"longue"

msgctxt "menu"
msgid "File"
msgstr "Fichier"

msgid "one drive"
msgid_plural "{n} drives"
msgstr[0] "un disque"
msgstr[1] "{n} disques"

#, fuzzy
msgid "guess"
msgstr "devinette"

msgid "untranslated"
msgstr ""
"""
    cat = parse_po(po)
    assert cat["long line"] == "ligne longue"
    assert cat["menu\x04File"] == "Fichier"
    assert cat["one drive\x00{n} drives"] == "un disque\x00{n} disques"
    assert "guess" not in cat and "untranslated" not in cat
    t = gettext.GNUTranslations(io.BytesIO(compile_mo(cat)))
    assert t.ngettext("one drive", "{n} drives", 3) == "{n} disques"
    assert t.pgettext("menu", "File") == "Fichier"
    with pytest.raises(i18n.CatalogError):
        parse_po('msgid "x"\nmsgstr unquoted\n')


def test_every_string_of_the_tui_is_translated_to_french() -> None:
    french = parse_po(FR_PO.read_text(encoding="utf-8"))
    wanted = extract(source_files())
    assert len(wanted) > 100  # the extractor really finds the TUI's strings (_(), N_(), key hints)
    assert "Erase" in wanted and "Drives: {n}" in wanted and "NIST Clear (recommended)" in wanted
    missing = [m for m in wanted if m not in french]
    assert missing == []
    # Method descriptions come from erase.methods and are shown in the policy chooser.
    assert [m.description for m in METHODS.values() if m.description not in french] == []


def test_translations_keep_their_placeholders() -> None:
    for msgid, msgstr in parse_po(FR_PO.read_text(encoding="utf-8")).items():
        if msgid:
            assert sorted(re.findall(r"\{\w+\}", msgid)) == sorted(re.findall(r"\{\w+\}", msgstr)), msgid


def test_language_choice_order(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("BOOT_IMAGE=/vmlinuz quiet tabula.lang=fr splash\n")
    none = tmp_path / "absent"
    en_env = {"LANG": "en_GB.UTF-8"}
    fr_env = {"LANG": "fr_FR.UTF-8"}
    assert choose_language(cmdline=none, environ={}) == "en"
    assert choose_language(cmdline=none, environ=fr_env) == "fr"
    assert choose_language(cmdline=none, environ={"LC_ALL": "C", "LANG": "fr_FR.UTF-8"}) == "en"
    assert choose_language(cmdline=none, environ={"LANGUAGE": "de:fr", "LANG": "de_DE"}) == "fr"
    assert choose_language(cmdline=cmdline, environ=en_env) == "fr"  # boot parameter beats locale
    assert choose_language(None, "en", cmdline=cmdline, environ=fr_env) == "en"  # settings beat boot
    assert choose_language("fr", "en", cmdline=none, environ=en_env) == "fr"  # explicit beats all
    assert choose_language("de", "", cmdline=none, environ={}) == "en"  # unknown: ignored


def test_set_language_switches_translations() -> None:
    try:
        i18n.set_language("fr")
        assert i18n._("Erase") == "Effacer"
        assert i18n.current_language() == "fr"
        i18n.set_language("en")
        assert i18n._("Erase") == "Erase"
        with pytest.raises(i18n.CatalogError):
            i18n.set_language("xx")
    finally:
        i18n.set_language("en")


def test_i18n_and_the_core_do_not_import_textual() -> None:
    code = (
        "import sys, station.i18n, station.jobs, host.drives, station.cli;"
        "assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules), 'textual imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
