"""Languages: the shipped catalogs (complete, compiled from their .po) and how the language is chosen."""

from __future__ import annotations

import gettext
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from station import i18n
from station.i18n import choose_language
from tools.i18n import compiled, missing, po_files, read, template

FR_PO = i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "tabula.po"


def test_shipped_mo_is_compiled_from_the_po() -> None:
    assert po_files() == [FR_PO]
    for po in po_files():
        mo = po.with_suffix(".mo")
        assert mo.read_bytes() == compiled(read(po)), f"{mo} is stale: run ./dev i18n"


def test_every_string_of_the_tui_is_translated_to_french() -> None:
    wanted = template()
    ids = {m.id for m in wanted}
    assert len(ids) > 100  # the extraction really finds the TUI's strings (_(), N_(), C_(), key hints)
    assert {"Erase", "Drives: {n}", "NIST Clear (recommended)"} <= ids  # a hint, a _(), an N_()
    assert wanted.get("recycle", context="verdict") is not None  # C_("verdict", "recycle")
    assert list(missing(read(FR_PO), wanted)) == [], "untranslated: run ./dev i18n, then translate"


def test_the_po_has_no_string_the_code_no_longer_uses() -> None:
    wanted = {(m.id, m.context) for m in template() if m.id}
    extra = [m.id for m in read(FR_PO) if m.id and (m.id, m.context) not in wanted]
    assert extra == [], "run ./dev i18n to drop them"


def test_compiled_catalog_reads_back_through_gettext() -> None:
    t = gettext.GNUTranslations(io.BytesIO(compiled(read(FR_PO))))
    assert t.gettext("Erase") == "Effacer"
    assert t.pgettext("verdict", "recycle") == "recyclage"
    assert t.gettext("Not a string of Tabula") == "Not a string of Tabula"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="Debian's gettext is not installed")
def test_msgfmt_accepts_the_po_and_agrees_with_babel(tmp_path: Path) -> None:
    out = tmp_path / "gnu.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(out), str(FR_PO)], check=True, capture_output=True)
    gnu = gettext.GNUTranslations(io.BytesIO(out.read_bytes()))
    ours = i18n.translations("fr")
    for message in read(FR_PO):
        if message.id and not message.context:
            assert ours.gettext(str(message.id)) == gnu.gettext(str(message.id))


def test_translations_keep_their_placeholders() -> None:
    for message in read(FR_PO):
        if message.id and message.string:
            msgid, msgstr = str(message.id), str(message.string)
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


def _hidden_translations(path: Path) -> list[int]:
    """Lines of translation calls the extractor cannot see: inside an f-string, or inside the
    arguments of another translation call (write ``x = _("...")`` first, or a constant)."""
    import ast

    keywords = {"_", "N_", "C_"}

    def calls(node: ast.AST) -> list[ast.Call]:  # translation calls of a literal
        return [
            n
            for n in ast.walk(node)
            if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in keywords
            and any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in n.args)
        ]

    hidden = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr):
            hidden += [c.lineno for c in calls(node)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in keywords:
            hidden += [c.lineno for arg in node.args for c in calls(arg)]
    return hidden


def test_no_translation_hides_from_the_extractor() -> None:
    found = {
        str(p.relative_to(i18n.LOCALE_DIR.parent.parent)): lines
        for p in sorted((i18n.LOCALE_DIR.parent / "tui").rglob("*.py"))
        if (lines := _hidden_translations(p))
    }
    assert found == {}
