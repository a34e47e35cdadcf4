"""Charts as SVG, rendered on the server (the pages run no script): pure functions to markup."""

from __future__ import annotations

import html
from collections.abc import Sequence

_COLOURS = ("#2f6f9f", "#d98b2b", "#4d9a4d", "#a33a3a", "#7a5aa6", "#8c6d46", "#c35a9b", "#6b6b6b")
_E = html.escape


def bars(title: str, items: Sequence[tuple[str, float, str]], *, width: int = 560) -> str:
    """Horizontal bars: (label, value, text shown after the bar); scaled to the largest value."""
    row, label_w = 22, 200
    height = row * len(items) + 30
    top = max((v for _, v, _ in items), default=0) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_E(title)}"><title>{_E(title)}</title>'
    ]
    span = width - label_w - 90
    for i, (label, value, text) in enumerate(items):
        y = 20 + i * row
        w = max(0.0, value / top * span)
        colour = _COLOURS[i % len(_COLOURS)]
        out.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{_E(label[:40])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{_E(text)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def columns(title: str, items: Sequence[tuple[str, int]], *, height: int = 220) -> str:
    """Vertical bars (e.g. devices per month), labelled under each bar with the value above."""
    col = 44
    width = max(200, col * len(items) + 40)
    top = max((v for _, v in items), default=0) or 1
    span = height - 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_E(title)}"><title>{_E(title)}</title>'
    ]
    for i, (label, value) in enumerate(items):
        x = 30 + i * col
        h = value / top * span
        y = height - 30 - h
        out.append(
            f'<rect x="{x}" y="{y:.1f}" width="{col - 10}" height="{h:.1f}" fill="{_COLOURS[0]}"/>'
            f'<text x="{x + (col - 10) / 2}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">{value}</text>'
            f'<text x="{x + (col - 10) / 2}" y="{height - 12}" text-anchor="middle" font-size="10">{_E(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
