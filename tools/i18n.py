"""The station's gettext catalogs, extracted and compiled with Babel (a development tool).

``./dev i18n`` (``python -m tools.i18n``) extracts every translatable string of the TUI, updates
``station/locale/<lang>/LC_MESSAGES/tabula.po`` (new strings appear untranslated, gone ones are
kept as obsolete ``#~`` entries) and compiles ``tabula.mo`` beside it.  The compiled ``.mo`` files are
committed, so ``pip install .`` and the live image need neither Babel nor gettext's tools; a test
checks that they are complete and up to date (``tests/test_tui_i18n.py``).  At run time the station
reads them with the standard library's :mod:`gettext` (:mod:`station.i18n`).

Translatable strings: ``_("...")``, ``N_("...")``, ``C_("context", "...")`` and the key hints
``Binding(key, action, "Hint")``, plus the overwrite methods' descriptions (erase.methods, shown
through ``_()`` in the policy chooser, cannot import the station's gettext).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from erase.methods import METHODS

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "tabula"
LOCALE_DIR = ROOT / "station" / "locale"
SOURCES = ROOT / "station" / "tui"
KEYWORDS = {"_": None, "N_": None, "C_": ((1, "c"), 2), "Binding": (3,)}


def template() -> Catalog:
    """Every translatable string of the TUI, as Babel extracts it (sorted, with its locations)."""
    catalog = Catalog(project="tabula", domain=DOMAIN, charset="utf-8")
    found = extract_from_dir(
        str(SOURCES),
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=(),
        strip_comment_tags=True,
    )
    for filename, lineno, message, _comments, context in found:
        path = (SOURCES / filename).relative_to(ROOT).as_posix()
        catalog.add(message, locations=[(path, lineno)], context=context)
    for method in METHODS.values():
        catalog.add(method.description, locations=[("erase/methods.py", 0)])
    return catalog


def po_files() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read(po: Path) -> Catalog:
    with po.open("rb") as f:
        return read_po(f, locale=po.parent.parent.name, domain=DOMAIN)


def compiled(catalog: Catalog) -> bytes:
    """The .mo of a catalog, as Babel compiles it (fuzzy entries left out)."""
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def missing(catalog: Catalog, wanted: Catalog) -> Iterator[str]:
    """The strings of ``wanted`` that ``catalog`` does not translate (or only fuzzily)."""
    for message in wanted:
        if not message.id:
            continue
        have = catalog.get(message.id, context=message.context)
        if have is None or not have.string or have.fuzzy:
            yield f"{message.context}|{message.id}" if message.context else str(message.id)


def update() -> list[Path]:
    """Merge the extracted strings into every .po and compile its .mo; the files written."""
    written = []
    wanted = template()
    for po in po_files():
        catalog = read(po)
        created = catalog.creation_date
        catalog.update(wanted, no_fuzzy_matching=True, update_header_comment=False)
        catalog.creation_date = created  # the header changes only when a translator edits it
        buf = io.BytesIO()
        # No source locations: they would change with every edit of the code, and conflict at merges.
        write_po(buf, catalog, width=110, no_location=True, ignore_obsolete=True, include_previous=False)
        po.write_bytes(buf.getvalue())
        mo = po.with_suffix(".mo")
        mo.write_bytes(compiled(read(po)))
        written += [po, mo]
    return written


def main() -> int:
    for path in update():
        print(f"wrote {path.relative_to(ROOT)}")
    problems = [f"{po.parent.parent.name}: {m}" for po in po_files() for m in missing(read(po), template())]
    for p in problems:
        print(f"untranslated: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
