"""Replacing an identifier by a fake of the same shape.  Pure.

A serial number or the unique part of a WWN is replaced character by character: a digit by a
digit, an upper-case letter by an upper-case one, a lower-case by a lower-case one, a hex digit by a
hex digit (when the value is hexadecimal), anything else kept.  Where the replacement characters
come from (a key drawn for one recording, a hash of a corpus case's name) is the caller's choice:
never the real value alone, so a fake says nothing about it.
"""

from __future__ import annotations

import string
from collections.abc import Iterator

_HEX = set(string.hexdigits)


def same_shape(value: str, stream: Iterator[int], *, hexadecimal: bool = False) -> str:
    """``value`` with each character replaced by one of its kind drawn from ``stream`` (bytes)."""
    out = []
    for ch in value:
        b = next(stream)
        if hexadecimal and ch in _HEX:
            digit = "0123456789abcdef"[b % 16]
            out.append(digit.upper() if ch.isupper() else digit)
        elif ch.isdigit():
            out.append(string.digits[b % 10])
        elif ch.isascii() and ch.isupper():
            out.append(string.ascii_uppercase[b % 26])
        elif ch.isascii() and ch.islower():
            out.append(string.ascii_lowercase[b % 26])
        else:
            out.append(ch)
    return "".join(out)
