"""Read back the QR code a PDF certificate draws: module matrix to text (ISO/IEC 18004), strictly.

reportlab draws each dark run of a QR row as a filled rectangle, so the module matrix can be recovered
exactly from the page's content stream (:mod:`certs.pdfcheck` does that); this module decodes it.

The decoder is strict, so that what it reads is what any phone reads: both copies of the format
information must be the same valid BCH codeword (and both copies of the version information, from
version 7), and every Reed-Solomon block must be a *valid* codeword.  A phone corrects errors; if the
drawn code carried an error-free-looking data part with error-correction bytes pointing to another
text, a phone could "correct" it into that other text.  Requiring every block to be error-free rules
that out.  Only numeric, alphanumeric and byte segments (UTF-8) are read, which is what reportlab
writes for a URL or ``tabula-cert:`` text.

The standard tables (Reed-Solomon block layout, alignment pattern positions) come from reportlab's QR
encoder, the one that draws the codes; the algorithm follows the standard and is cross-checked
against zbar in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from reportlab.graphics.barcode.qrencoder import QRRSBlock, QRUtil

from certs.errors import QrError

Matrix = list[list[bool]]


_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda r, c: (r + c) % 2 == 0,
    lambda r, c: r % 2 == 0,
    lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0,
    lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0,
    lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _bch(data: int, length: int, generator: int) -> int:
    d = data << length
    top = generator.bit_length()
    while d.bit_length() >= top:
        d ^= generator << (d.bit_length() - top)
    return (data << length) | d


# format information: 5 data bits (2 error-correction level bits, 3 mask bits), BCH(15,5), XOR mask
_FORMATS = {_bch(d, 10, 0b10100110111) ^ 0b101010000010010: d for d in range(32)}


def _format_positions(n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(row, col) of format bits 0..14, in the two copies (as ISO 18004 section 7.9 places them)."""
    first = [(i, 8) if i < 6 else (i + 1, 8) if i < 8 else (n - 15 + i, 8) for i in range(15)]
    second = [(8, n - 1 - i) if i < 8 else (8, 7) if i == 8 else (8, 14 - i) for i in range(15)]
    return first, second


def _read_bits(m: Matrix, positions: list[tuple[int, int]]) -> int:
    return sum(1 << i for i, (r, c) in enumerate(positions) if m[r][c])


def _alignment_centres(version: int) -> list[tuple[int, int]]:
    """Centres of the alignment patterns: every pair of table positions except those on a finder."""
    n = 4 * version + 17
    pos = QRUtil.getPatternPosition(version)
    return [
        (r, c)
        for r in pos
        for c in pos
        if not ((r <= 8 and c <= 8) or (r <= 8 and c >= n - 9) or (r >= n - 9 and c <= 8))
    ]


def _square(r0: int, c0: int, size: int) -> set[tuple[int, int]]:
    return {(r, c) for r in range(r0, r0 + size) for c in range(c0, c0 + size)}


@cache
def _function_modules(version: int) -> frozenset[tuple[int, int]]:
    """Every module that is not data: finders and separators, timing, alignment, format, version."""
    n = 4 * version + 17
    out = _square(0, 0, 8) | _square(0, n - 8, 8) | _square(n - 8, 0, 8)
    out.update((6, i) for i in range(n))
    out.update((i, 6) for i in range(n))
    a, b = _format_positions(n)
    out.update(a + b)
    out.add((n - 8, 8))  # the dark module
    for r, c in _alignment_centres(version):
        out |= _square(r - 2, c - 2, 5)
    if version >= 7:
        out.update((i // 3, n - 11 + i % 3) for i in range(18))
        out.update((n - 11 + i % 3, i // 3) for i in range(18))
    return frozenset(out)


def _data_positions(version: int) -> Iterator[tuple[int, int]]:
    """Data module positions in reading order: two-column zigzag from the bottom right."""
    n = 4 * version + 17
    skip = _function_modules(version)
    upward = True
    col = n - 1
    while col > 0:
        if col == 6:  # the vertical timing pattern
            col -= 1
        rows = range(n - 1, -1, -1) if upward else range(n)
        for r in rows:
            for c in (col, col - 1):
                if (r, c) not in skip:
                    yield r, c
        upward = not upward
        col -= 2


# --- Reed-Solomon over GF(256), polynomial 0x11D ------------------------------------------------------

_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


@cache
def _generator(degree: int) -> tuple[int, ...]:
    g = [1]
    for i in range(degree):
        nxt = [0] * (len(g) + 1)
        for j, coef in enumerate(g):
            nxt[j] ^= coef
            if coef:
                nxt[j + 1] ^= _EXP[_LOG[coef] + i]
        g = nxt
    return tuple(g)


def rs_parity(data: list[int], degree: int) -> list[int]:
    g = _generator(degree)
    rem = list(data) + [0] * degree
    for i in range(len(data)):
        coef = rem[i]
        if coef:
            lc = _LOG[coef]
            for j in range(1, len(g)):
                if g[j]:
                    rem[i + j] ^= _EXP[lc + _LOG[g[j]]]
    return rem[len(data) :]


# --- decoding -----------------------------------------------------------------------------------------


def decode(m: Matrix) -> str:
    """The text of a drawn QR code (rows top to bottom, True = dark); :class:`QrError` otherwise."""
    n = len(m)
    if n < 21 or n > 177 or (n - 17) % 4 or any(len(row) != n for row in m):
        raise QrError(f"a {n}-module square is not a QR code size")
    version = (n - 17) // 4
    level, mask = _read_format(m)
    _check_version_info(m, version)
    _check_patterns(m, version)
    return _parse(_codewords(m, version, level, mask), version)


def _read_format(m: Matrix) -> tuple[int, int]:
    """The error-correction level and mask, from two identical, valid copies of the format bits."""
    n = len(m)
    first, second = _format_positions(n)
    fmt = _read_bits(m, first)
    if fmt != _read_bits(m, second) or fmt not in _FORMATS:
        raise QrError("the two copies of the format information differ or are not valid")
    if not m[n - 8][8]:
        raise QrError("the dark module is missing")
    return _FORMATS[fmt] >> 3, _FORMATS[fmt] & 7


def _check_version_info(m: Matrix, version: int) -> None:
    if version < 7:
        return
    n = len(m)
    want = _bch(version, 12, 0b1111100100101)
    a = sum(1 << i for i in range(18) if m[i // 3][n - 11 + i % 3])
    b = sum(1 << i for i in range(18) if m[n - 11 + i % 3][i // 3])
    if a != want or b != want:
        raise QrError("the version information does not match the size")


def _finder(r: int, c: int) -> bool:
    """A finder pattern's module at (r, c) from its corner: a dark ring and core; -1 and 7 are the light separator."""
    if not (0 <= r <= 6 and 0 <= c <= 6):
        return False
    return r in (0, 6) or c in (0, 6) or (2 <= r <= 4 and 2 <= c <= 4)


@cache
def _expected_patterns(version: int) -> tuple[tuple[int, int, bool], ...]:
    """(row, col, dark) of every finder, separator, timing and alignment module."""
    n = 4 * version + 17
    want: dict[tuple[int, int], bool] = {}
    for r0, c0 in ((0, 0), (0, n - 7), (n - 7, 0)):
        for dr in range(-1, 8):
            for dc in range(-1, 8):
                if 0 <= r0 + dr < n and 0 <= c0 + dc < n:
                    want[(r0 + dr, c0 + dc)] = _finder(dr, dc)
    for i in range(8, n - 8):
        want[(6, i)] = want[(i, 6)] = i % 2 == 0
    for r, c in _alignment_centres(version):
        for dr in range(-2, 3):
            for dc in range(-2, 3):
                want[(r + dr, c + dc)] = max(abs(dr), abs(dc)) != 1
    return tuple((r, c, dark) for (r, c), dark in want.items())


def _check_patterns(m: Matrix, version: int) -> None:
    """Finder, separator, timing and alignment patterns exactly as the standard draws them."""
    for r, c, dark in _expected_patterns(version):
        if m[r][c] != dark:
            raise QrError(f"the finder, timing or alignment patterns are damaged (module {r},{c})")


def _deinterleave(raw: list[int], blocks: list[Any]) -> tuple[list[list[int]], list[list[int]]]:
    """Split the codeword sequence into each block's data and error-correction codewords."""
    data: list[list[int]] = [[] for _ in blocks]
    ec: list[list[int]] = [[] for _ in blocks]
    pos = 0
    sizes = ([b.dataCount for b in blocks], [b.totalCount - b.dataCount for b in blocks])
    for target, size in zip((data, ec), sizes, strict=True):
        for i in range(max(size)):
            for k in range(len(blocks)):
                if i < size[k]:
                    target[k].append(raw[pos])
                    pos += 1
    return data, ec


def _codewords(m: Matrix, version: int, level: int, mask: int) -> list[int]:
    """The data codewords, once every Reed-Solomon block is checked to be error-free."""
    masked = _MASKS[mask]
    bits = [m[r][c] ^ masked(r, c) for r, c in _data_positions(version)]
    raw = [int("".join("1" if b else "0" for b in bits[i : i + 8]), 2) for i in range(0, len(bits) - 7, 8)]
    blocks = QRRSBlock.getRSBlocks(version, level)
    if len(raw) < sum(b.totalCount for b in blocks):
        raise QrError("fewer data modules than the version holds")
    data, ec = _deinterleave(raw, blocks)
    for k, b in enumerate(blocks):
        if rs_parity(data[k], b.totalCount - b.dataCount) != ec[k]:
            raise QrError(f"error-correction block {k + 1} is not error-free")
    return [x for block in data for x in block]


class _Bits:
    def __init__(self, data: list[int]) -> None:
        self.bits = "".join(f"{x:08b}" for x in data)
        self.pos = 0

    def left(self) -> int:
        return len(self.bits) - self.pos

    def take(self, count: int) -> int:
        if count > self.left():
            raise QrError("the data ends inside a segment")
        value = int(self.bits[self.pos : self.pos + count] or "0", 2)
        self.pos += count
        return value


def _count_bits(mode: int, version: int) -> int:
    band = 0 if version <= 9 else 1 if version <= 26 else 2
    return {1: (10, 12, 14), 2: (9, 11, 13), 4: (8, 16, 16)}[mode][band]


def _numeric(bits: _Bits, count: int) -> bytes:
    full, rest = divmod(count, 3)
    groups = [(3, 10)] * full + ([(rest, 3 * rest + 1)] if rest else [])
    out = b""
    for digits, width in groups:
        v = bits.take(width)
        if v >= 10**digits:
            raise QrError("invalid numeric group")
        out += str(v).zfill(digits).encode("ascii")
    return out


def _parse(data: list[int], version: int) -> str:
    bits = _Bits(data)
    out = bytearray()
    while bits.left() >= 4:
        mode = bits.take(4)
        if mode == 0:
            break
        if mode not in (1, 2, 4):
            raise QrError(f"segment mode {mode:04b} is not read (numeric, alphanumeric and byte only)")
        count = bits.take(_count_bits(mode, version))
        if mode == 4:
            out += bytes(bits.take(8) for _ in range(count))
        elif mode == 2:
            for _ in range(count // 2):
                v = bits.take(11)
                if v >= 45 * 45:
                    raise QrError("invalid alphanumeric pair")
                out += (_ALNUM[v // 45] + _ALNUM[v % 45]).encode("ascii")
            if count % 2:
                v = bits.take(6)
                if v >= 45:
                    raise QrError("invalid alphanumeric character")
                out += _ALNUM[v].encode("ascii")
        else:
            out += _numeric(bits, count)
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as e:
        raise QrError("the QR code's bytes are not UTF-8 text") from e
