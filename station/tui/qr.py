"""A certificate's QR code drawn in the terminal, two modules per character cell (half blocks).

The matrix comes from the QR encoder the PDF uses (reportlab's ``QrCodeWidget``, same error-correction
level), so the terminal shows the very code printed on the certificate: a phone scans either.
"""

from __future__ import annotations

#: Light modules around the code: scanners need a quiet zone.
BORDER = 2
#: How the lines are drawn: dark ink on a light background, whatever the terminal's own colours.
STYLE = "#000000 on #ffffff"

_CELLS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def matrix(value: str) -> list[list[bool]]:
    """The QR code of ``value`` as rows of modules (True = dark), as the PDF's widget encodes it."""
    # Start-up time: reportlab loads when a result is shown, not when the TUI starts (live image).
    from reportlab.graphics.barcode.qr import QrCodeWidget

    widget = QrCodeWidget(value)
    widget.qr.make()
    return [[bool(m) for m in row] for row in widget.qr.modules]


def half_blocks(value: str, *, border: int = BORDER) -> list[str]:
    """The QR code as text lines, each character two modules one above the other (dark = ink).

    Show the lines with :data:`STYLE`; the border is the light quiet zone a scanner needs.
    """
    rows = matrix(value)
    size = len(rows) + 2 * border
    grid = [[False] * size for _ in range(size)]
    for r, row in enumerate(rows):
        grid[r + border][border : border + len(row)] = row
    if size % 2:
        grid.append([False] * size)
    return [
        "".join(_CELLS[(grid[y][x], grid[y + 1][x])] for x in range(size)) for y in range(0, len(grid), 2)
    ]
