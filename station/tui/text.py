"""Building blocks of the rich text the screens and reports show (no Textual)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text


def append_fields(text: Text, fields: Iterable[tuple[str, object]], *, missing: str = "-") -> None:
    """``  Label: value`` lines, the label in bold; an empty value shows ``missing``."""
    for label, value in fields:
        text.append(f"  {label}: ", style="bold")
        text.append(f"{value or missing}\n")


def heading(text: Text, title: str, *, first: bool = False) -> None:
    """An underlined section title, after a blank line unless it comes first."""
    text.append(("" if first else "\n") + title + "\n", style="bold underline")
