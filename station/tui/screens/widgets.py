"""Small parts the screens share: key hints in the current language, clipped cells, tables, bars."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from textual.binding import BindingsMap
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import (
    DataTable,
)

from station.i18n import _

W = TypeVar("W", bound=Widget)


def translate_bindings(node: DOMNode) -> None:
    """Show this node's key hints in the current language (BINDINGS are written in English)."""
    keys = {
        key: [dataclasses.replace(b, description=_(b.description)) if b.description else b for b in bindings]
        for key, bindings in node._bindings.key_to_bindings.items()
    }
    node._bindings = BindingsMap.from_keys(keys)


def clip(text: str | None, width: int, *, keep_end: bool = False) -> str:
    if not text:
        return "-"
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1) :] if keep_end else text[: width - 1] + "…"


def bar(fraction: float, width: int = 10) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


#: A table column: key, English label (translated when the table is set up), width.
Column = tuple[str, str, int]


def data_table(table_id: str, *, cursor: bool = True, zebra: bool = True) -> DataTable[Any]:
    """A compact table (no cell padding): every table of the station is built here."""
    if cursor:
        return DataTable(id=table_id, cursor_type="row", cell_padding=0, zebra_stripes=zebra)
    return DataTable(id=table_id, cursor_type="none", cell_padding=0, show_cursor=False, zebra_stripes=zebra)


def add_columns(table: DataTable[Any], columns: tuple[Column, ...]) -> None:
    """Set up a table's columns with their labels in the current language."""
    for key, label, width in columns:
        table.add_column(_(label), key=key, width=width)
