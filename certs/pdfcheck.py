"""Reading a PDF certificate back: its one embedded record, and whether its page says the same.

**One record per PDF.**  :func:`extract_signed` accepts a PDF only when every PDF tool finds the same
single record in it: the document's ``/EmbeddedFiles`` name tree is one flat ``/Names`` array holding
one entry, ``tabula-certificate.json``, whose file specification embeds one stream (``/EF /F`` and,
if present, ``/EF /UF`` are that same stream or byte-identical; uncompressed or Flate, since other
filters decode differently from one tool to the next), and nothing anywhere else in the file
embeds a file: every object of the file is scanned, so a second file specification, a second
``EmbeddedFile`` stream, a nested ``/Kids`` name tree or a file-attachment annotation is refused
(``pdf_structure``).  (pypdf prefers ``/UF``, poppler ``/F``, qpdf lists the name tree only: without
this rule each could read another record.)

**The page.**  :func:`check_page` compares the page with the signed record through the same blocks
that drew it (:mod:`certs.page`): the text of every page, read with pypdf and compared without
whitespace, must contain each block's text in drawing order, and nothing else (a table's header
repeated on a new page excepted).  The QR code is recovered from the rectangles the page draws and
decoded strictly (:mod:`certs.qr`): it must hold the record's id and hash.  The document information
(title, subject, keywords, author and Tabula's own keys), when present, must match, and no XMP
metadata stream may be added.  Each difference is a :class:`~certs.errors.PageMismatch` naming the
field.  This catches an edited page; it cannot prove what a viewer shows (a font can draw one glyph
for another, a white box can hide text): the signed record stays authoritative.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from statistics import median
from typing import Any

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DictionaryObject,
    IndirectObject,
    NameObject,
    StreamObject,
)
from reportlab.pdfbase.pdfmetrics import getFont

from certs.errors import CertError, PageMismatch, PdfError, PdfStructure, QrError
from certs.jws import MAX_ENVELOPE_BYTES
from certs.page import Edition, Segment, SignedRecord, blocks_of, editions, metadata_of, qr_payload, segments
from certs.qr import Matrix, decode

ATTACHMENT = "tabula-certificate.json"
#: The most objects (direct and indirect) scanned in one PDF; a certificate has a few thousand.
MAX_PDF_OBJECTS = 200_000


def _open(data: bytes, source: str) -> PdfReader:
    try:
        return PdfReader(io.BytesIO(data))
    except Exception as e:  # pypdf fails in many ways on damaged files; all mean "unreadable"
        raise PdfError(f"{source} is not a readable PDF ({type(e).__name__}: {str(e)[:200]})") from e


def extract_signed(data: bytes, source: str = "PDF", name: str = ATTACHMENT) -> bytes:
    """The signed record embedded in a Tabula PDF certificate, if it is the file's only embedded file.

    ``name`` is the attachment's name: ``tabula-certificate.json``, or a lot report's
    ``tabula-lot-report.json`` (:mod:`certs.lotpdf`)."""
    reader = _open(data, source)
    try:
        return _extract(reader, source, name)
    except CertError:
        raise
    except Exception as e:  # pypdf resolves objects lazily: damage surfaces here (DependencyError...)
        raise PdfError(f"{source} is not a readable PDF ({type(e).__name__}: {str(e)[:200]})") from e


def _resolve(obj: Any) -> Any:
    return obj.get_object() if isinstance(obj, IndirectObject) else obj


def _extract(reader: PdfReader, source: str, attachment: str) -> bytes:
    root = _resolve(reader.trailer.get("/Root"))
    if not isinstance(root, DictionaryObject):
        raise PdfError(f"{source} has no document catalog")
    names = _resolve(root.get("/Names"))
    tree = _resolve(names.get("/EmbeddedFiles")) if isinstance(names, DictionaryObject) else None
    if not isinstance(tree, DictionaryObject):
        raise PdfError(f"{source} carries no signed record (no '{attachment}' attachment)")
    if "/Kids" in tree:
        raise PdfStructure(
            f"{source}: the embedded-file name tree is nested (/Kids); a Tabula PDF has one flat list"
        )
    entries = _resolve(tree.get("/Names"))
    if not isinstance(entries, ArrayObject) or len(entries) != 2:
        count = len(entries) // 2 if isinstance(entries, ArrayObject) else 0
        raise PdfStructure(f"{source} names {count} embedded files; a Tabula PDF embeds exactly one")
    name, spec = _resolve(entries[0]), _resolve(entries[1])
    if str(name) != attachment or not isinstance(spec, DictionaryObject):
        raise PdfStructure(f"{source} embeds {str(name)[:80]!r}, not {attachment!r}")
    stream, distinct = _embedded_stream(spec, source, attachment)
    _scan(reader, source, distinct)
    content = stream.get_data()
    if len(content) > MAX_ENVELOPE_BYTES:
        raise PdfStructure(f"{source}: the embedded record is larger than {MAX_ENVELOPE_BYTES} bytes")
    return bytes(content)


def _check_record_stream(obj: Any, source: str) -> StreamObject:
    if not isinstance(obj, StreamObject):
        raise PdfStructure(f"{source}: /EF does not point to an embedded file stream")
    if obj.get("/Filter") not in (None, "/FlateDecode") or "/DecodeParms" in obj:
        # other filters decode differently (or not at all) from one PDF tool to the next
        raise PdfStructure(f"{source}: the embedded record is encoded with {obj.get('/Filter')}, not Flate")
    return obj


def _embedded_stream(spec: DictionaryObject, source: str, attachment: str) -> tuple[StreamObject, int]:
    """The record's stream (and how many distinct stream objects /EF names: 1, or 2 byte-identical ones)."""
    for key in ("/F", "/UF"):
        if key in spec and str(_resolve(spec[key])) != attachment:
            raise PdfStructure(f"{source}: the file specification's {key} names another file")
    ef = _resolve(spec.get("/EF"))
    if not isinstance(ef, DictionaryObject) or "/F" not in ef or not set(ef) <= {"/F", "/UF"}:
        raise PdfStructure(f"{source}: the file specification's /EF must hold /F (and optionally /UF) only")
    streams = [_check_record_stream(_resolve(ef[k]), source) for k in ("/F", "/UF") if k in ef]
    distinct = 1 if len(streams) == 1 or ef.raw_get("/F") == ef.raw_get("/UF") else 2
    if distinct == 2 and streams[0].get_data() != streams[1].get_data():
        raise PdfStructure(
            f"{source}: /EF/F and /EF/UF embed different files (pypdf reads one, poppler the other)"
        )
    return streams[0], distinct


def _objects(reader: PdfReader, source: str) -> Iterator[Any]:
    """Every object of the file: each indirect object of the cross-reference table and what it holds."""
    numbers: set[tuple[int, int]] = set()
    for gen, table in reader.xref.items():
        numbers.update((num, gen) for num in table)
    numbers.update((num, 0) for num in reader.xref_objStm)
    seen = 0
    for num, gen in sorted(numbers):
        stack: list[Any] = [IndirectObject(num, gen, reader).get_object()]
        while stack:
            obj = stack.pop()
            seen += 1
            if seen > MAX_PDF_OBJECTS:
                raise PdfStructure(f"{source} holds more than {MAX_PDF_OBJECTS} objects")
            yield obj
            if isinstance(obj, DictionaryObject):
                stack.extend(v for v in obj.values() if not isinstance(v, IndirectObject))
            elif isinstance(obj, ArrayObject):
                stack.extend(v for v in obj if not isinstance(v, IndirectObject))


def _scan(reader: PdfReader, source: str, streams: int) -> None:
    """Exactly one file specification embeds a file, and no annotation attaches one."""
    specs = 0
    embedded = 0
    for obj in _objects(reader, source):
        if not isinstance(obj, DictionaryObject):
            continue
        if obj.get("/Subtype") == "/FileAttachment":
            raise PdfStructure(f"{source} has a file-attachment annotation; a Tabula PDF has none")
        specs += "/EF" in obj
        embedded += obj.get("/Type") == "/EmbeddedFile"
    if specs != 1 or embedded > streams:
        raise PdfStructure(
            f"{source} holds {specs} file specifications with embedded files and {embedded} embedded file "
            "streams; a Tabula PDF holds exactly one"
        )


# --- the page ---------------------------------------------------------------------------------------


@dataclass
class PageCheck:
    mismatches: list[PageMismatch] = field(default_factory=list)
    qr_text: str | None = None


def check_page(data: bytes, cert: SignedRecord, digest: str) -> PageCheck:
    """Compare the PDF's page, QR code and metadata with the signed record (see the module docstring).

    The page is compared with every edition and language it may have been drawn in (:mod:`certs.page`);
    the closest one is reported.
    """
    out = PageCheck()
    try:
        reader = _open(data, "PDF")
        first = _parsed_first_page(reader)  # parsed once, for the QR code and for the text
        text = page_text(reader)
        best: tuple[list[PageMismatch], Edition] | None = None
        for edition in editions():
            found = _compare_text(text, cert, digest, edition)
            if best is None or len(found) < len(best[0]):
                best = (found, edition)
            if not found:
                break
        assert best is not None
        out.mismatches += best[0]
        out.mismatches += _compare_metadata(reader, cert, digest, best[1])
        qr = _compare_qr(first, cert, digest)
        if isinstance(qr, PageMismatch):
            out.mismatches.append(qr)
        else:
            out.qr_text = qr
    except CertError as e:
        out.mismatches.append(PageMismatch("page", f"cannot read the page: {e.message}"))
    except Exception as e:  # noqa: BLE001 - pypdf's text extraction fails in many ways on damaged files
        out.mismatches.append(
            PageMismatch("page", f"cannot read the page ({type(e).__name__}: {str(e)[:200]})")
        )
    return out


@cache
def _drawable(c: str) -> bool:
    """Whether reportlab draws ``c`` with the page's fonts (else it draws a black square, '■')."""
    font = getFont("Helvetica")
    for f in [font, *font.substitutionFonts[:-1]]:  # the last one is the 'not defined' glyph font
        try:
            c.encode(f.encName)
            return True
        except UnicodeEncodeError:
            continue
    return False


def _strip(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


def _as_drawn(text: str) -> str:
    """``text`` as read back from the page: no whitespace, no soft hyphen, undrawable characters as '■'."""
    return "".join(c if _drawable(c) else "\u25a0" for c in text if not c.isspace() and c != "\u00ad")


def _compare_text(page_text: str, cert: SignedRecord, digest: str, edition: Edition) -> list[PageMismatch]:
    return compare_segments(page_text, segments(blocks_of(cert, digest, "", edition)))


def page_text(reader: PdfReader) -> str:
    """The text of every page, read back with pypdf, without whitespace (what the segments match)."""
    return "".join(_strip(p.extract_text() or "") for p in reader.pages)


def compare_segments(page_text: str, segs: Iterable[Segment]) -> list[PageMismatch]:
    """Each segment in order; the text between two matches may only be a repeated table header."""
    mismatches: list[PageMismatch] = []
    cursor = 0
    headers: list[str] = []
    last_ok = True
    last_field = "page"
    for seg in segs:
        want = _as_drawn(seg.text)
        at = page_text.find(want, cursor)
        if at < 0:
            mismatches.append(_missing(seg))
            last_ok = False
            continue
        if last_ok and not _only_headers(page_text[cursor:at], headers):
            mismatches.append(_extra(page_text[cursor:at], last_field))
        if seg.repeatable:
            headers.append(want)
        cursor, last_ok, last_field = at + len(want), True, seg.field
    if last_ok and not _only_headers(page_text[cursor:], headers):
        mismatches.append(_extra(page_text[cursor:], last_field))
    return mismatches


def _only_headers(gap: str, headers: list[str]) -> bool:
    while gap:
        for h in headers:
            if h and gap.startswith(h):
                gap = gap[len(h) :]
                break
        else:
            return False
    return True


def _missing(seg: Segment) -> PageMismatch:
    return PageMismatch(seg.field, f"the page does not show the signed text {seg.text[:120]!r}")


def _extra(gap: str, after: str) -> PageMismatch:
    return PageMismatch(
        "page_text", f"the page shows text that is not in the signed record (after {after}): {gap[:80]!r}"
    )


def _compare_metadata(
    reader: PdfReader, cert: SignedRecord, digest: str, edition: Edition
) -> list[PageMismatch]:
    out: list[PageMismatch] = []
    info: Any = reader.metadata or {}
    want = metadata_of(cert, digest, edition)
    want["/Author"] = cert.person.organisation or "Tabula"
    for key, value in want.items():
        got = info.get(key)
        if got is None or (key == "/Keywords" and str(got) == ""):  # absent, or reportlab's empty default
            continue
        if str(got) != value:
            out.append(
                PageMismatch(
                    f"metadata.{key[1:].lower()}", f"is {str(got)[:120]!r}, the record says {value!r}"
                )
            )
    root = _resolve(reader.trailer.get("/Root"))
    if isinstance(root, DictionaryObject) and "/Metadata" in root:
        out.append(PageMismatch("metadata.xmp", "an XMP metadata stream was added (Tabula writes none)"))
    return out


def open_pdf(data: bytes, source: str = "PDF") -> PdfReader:
    """A PDF reader, or :class:`~certs.errors.PdfError` for a file pypdf cannot open."""
    return _open(data, source)


def first_page_qr(reader: PdfReader) -> str:
    """The text of the one QR code the first page draws (:class:`~certs.errors.QrError` otherwise).

    The parsed page is kept in the reader, so reading the page's text afterwards reuses the parse."""
    content = _parsed_first_page(reader)
    if content is None:
        raise QrError("the first page draws nothing")
    return decode(qr_matrix(content))


def _parsed_first_page(reader: PdfReader) -> ContentStream | None:
    """Page 1's content stream, parsed, and put back in the page so text extraction reuses the parse."""
    if not reader.pages:
        return None
    page = reader.pages[0]
    content = page.get_contents()
    if content is None:
        return None
    # "bytes": the encoding pypdf's own text extraction parses with
    parsed = ContentStream(content, reader, "bytes")
    page[NameObject("/Contents")] = parsed
    return parsed


def _compare_qr(content: ContentStream | None, cert: SignedRecord, digest: str) -> str | PageMismatch:
    try:
        if content is None:
            raise QrError("the first page draws nothing")
        text = decode(qr_matrix(content))
    except QrError as e:
        return PageMismatch("qr_code", f"no readable QR code on the first page: {e.message}")
    expected = qr_payload(cert.certificate_id, digest, cert.verification_url or "")
    if text == expected:
        return text
    if cert.verification_url is not None:  # the link is signed: nothing else will do
        return PageMismatch("qr_code", f"holds {text[:160]!r}, not the signed {expected[:200]!r}")
    # A record from before links were signed: any http(s) link ending with the id and hash (noted).
    tail = f"id={cert.certificate_id}&sha256={digest}"
    if text.startswith(("https://", "http://")) and text.endswith(tail) and text[-len(tail) - 1] in "?&":
        return text
    return PageMismatch("qr_code", f"holds {text[:160]!r}, not this record's id and hash")


# --- recovering the QR code's modules from the page's drawing operators ---------------------------------

_Rect = tuple[float, float, float, float]


def _black(operands: list[Any], op: bytes) -> bool:
    values = [float(x) for x in operands]
    want = {b"g": [0.0], b"rg": [0.0, 0.0, 0.0], b"k": [0.0, 0.0, 0.0, 1.0]}.get(op)
    return values == want


class _Painter:
    """Follows the graphics state (CTM, fill colour) and collects black filled axis-aligned rectangles."""

    _FILL = (b"f", b"f*", b"F")
    _END_PATH = (b"f", b"f*", b"F", b"n", b"S", b"s", b"B", b"B*", b"b", b"b*")
    _NOT_RECT = (b"m", b"l", b"c", b"v", b"y", b"h")

    def __init__(self) -> None:
        self.ctm: tuple[float, ...] = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        self.black = True
        self.stack: list[tuple[tuple[float, ...], bool]] = []
        self.pending: list[_Rect] = []
        self.plain = True  # the current path is made of rectangles only
        self.rects: list[_Rect] = []

    def op(self, operands: list[Any], op: bytes) -> None:
        if op in (b"g", b"rg", b"k", b"sc", b"scn", b"cs"):
            self.black = _black(operands, op)
        elif op in self._NOT_RECT:
            self.plain = False
        elif op in self._END_PATH:
            self._end_path(op)
        else:
            handler = self._HANDLERS.get(op)
            if handler is not None:
                handler(self, operands)

    def _save(self, operands: list[Any]) -> None:
        self.stack.append((self.ctm, self.black))

    def _restore(self, operands: list[Any]) -> None:
        if self.stack:
            self.ctm, self.black = self.stack.pop()

    def _transform(self, operands: list[Any]) -> None:
        if len(operands) == 6:
            self.ctm = _multiply([float(x) for x in operands], self.ctm)

    def _rect(self, operands: list[Any]) -> None:
        if len(operands) == 4:
            x, y, w, h = (float(v) for v in operands)
            self.pending.append((x, y, w, h))

    def _end_path(self, op: bytes) -> None:
        if op in self._FILL and self.black and self.plain:
            self.rects.extend(r for r in (_place(p, self.ctm) for p in self.pending) if r is not None)
        self.pending, self.plain = [], True

    _HANDLERS: dict[bytes, Callable[[_Painter, list[Any]], None]] = {
        b"q": _save,
        b"Q": _restore,
        b"cm": _transform,
        b"re": _rect,
    }


def _multiply(m: list[float], ctm: tuple[float, ...]) -> tuple[float, ...]:
    a, b, c, d, e, f = m
    A, B, C, D, E, F = ctm
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def _place(rect: _Rect, ctm: tuple[float, ...]) -> _Rect | None:
    a, b, c, d, e, f = ctm
    if b != 0 or c != 0 or a <= 0 or d <= 0:
        return None  # rotated, skewed or mirrored: not how the certificate draws its QR code
    x, y, w, h = rect
    x0, x1 = sorted((a * x + e, a * (x + w) + e))
    y0, y1 = sorted((d * y + f, d * (y + h) + f))
    return x0, y0, x1 - x0, y1 - y0


def _cells(rects: list[_Rect]) -> list[tuple[int, int, int]]:
    """(row, column, run length) of each rectangle, in modules from the code's top-left corner."""
    size = median(h for _, _, _, h in rects)
    left = min(x for x, _, _, _ in rects)
    top = max(y + h for _, y, _, h in rects)
    cells = []
    for x, y, w, h in rects:
        row, col, run = (top - y - h) / size, (x - left) / size, w / size
        if (
            abs(h - size) > 0.02 * size
            or any(abs(v - round(v)) > 0.1 for v in (row, col, run))
            or round(run) < 1
        ):
            raise QrError("a black shape near the QR code is not one of its modules")
        cells.append((round(row), round(col), round(run)))
    return cells


def qr_matrix(content: ContentStream) -> Matrix:
    """The module matrix of the one QR code drawn by ``content`` (every black filled rectangle is a run)."""
    painter = _Painter()
    for operands, op in content.operations:
        painter.op(operands, op)
    if not painter.rects:
        raise QrError("nothing drawn looks like a QR code")
    cells = _cells(painter.rects)
    n = max(c + r for _, c, r in cells)
    if max(r for r, _, _ in cells) + 1 != n or n > 177:
        raise QrError("the drawn modules do not form a square QR code")
    m = [[False] * n for _ in range(n)]
    for row, col, run in cells:
        for c in range(col, col + run):
            if m[row][c]:
                raise QrError("two drawn modules overlap")
            m[row][c] = True
    return m
