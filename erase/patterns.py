"""The bytes a pass puts on the device, generated fast enough to keep up with the device.

A pass is a pure function of the absolute device offset (see :class:`erase.model.Pattern`):

* byte patterns are laid from offset 0: the byte at ``o`` is ``pattern[o % len(pattern)]``;
* prng passes are the AES-128-CTR keystream of the pass key, with the 128-bit big-endian counter of
  the 16-byte block at ``o`` equal to ``o // 16`` (so any block can be regenerated on its own).

Speed notes (measured on the lab machine): ``encryptor.update_into()`` into a reused buffer makes
~10 GB/s per core; ``update()`` allocates and is ~5x slower.  A sequential caller keeps one
encryptor and just keeps calling ``update_into`` (the counter continues by itself).
"""

from __future__ import annotations

import mmap

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from erase.model import Pattern

Buffer = memoryview | mmap.mmap | bytearray

_AES_BLOCK = 16


def _ctr_encryptor(key: bytes, offset: int) -> CipherContext:
    nonce = (offset // _AES_BLOCK).to_bytes(16, "big")
    return Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()


class PatternSource:
    """Fills buffers with the expected device content of one pass, for any offset.

    Sequential calls (each ``offset`` equal to the previous ``offset + len(buf)``) reuse the running
    AES-CTR state; any other offset re-keys at that offset, so random access is correct too.
    """

    def __init__(self, pattern: Pattern, *, chunk: int = 4 << 20) -> None:
        self.pattern = pattern
        self._chunk = max(chunk, 4096)
        if pattern.kind == "bytes":
            self._pat = pattern.pattern_bytes
            self._template = b""
            self._grow_template(self._chunk)
        else:
            self._key = pattern.key
            self._zeros = bytes(self._chunk)
            self._enc: CipherContext | None = None
            self._next: int | None = None

    @property
    def is_prng(self) -> bool:
        return self.pattern.kind == "prng"

    def content_tag(self, offset: int, length: int) -> tuple[int, int] | None:
        """A tag equal for two (offset, length) pairs whose content is identical, or None.

        Byte patterns repeat with the pattern period, so a buffer already filled for the same phase
        and length need not be filled again (the engine skips the copy).  Random data never repeats.
        """
        if self.pattern.kind == "bytes":
            return (offset % len(self._pat), length)
        return None

    def _grow_template(self, n: int) -> None:
        plen = len(self._pat)
        need = n + plen
        if len(self._template) < need:
            self._template = self._pat * (-(-need // plen))

    def fill(self, offset: int, buf: Buffer) -> None:
        """Write into ``buf`` exactly the bytes the device must hold at ``[offset, offset + len(buf))``."""
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        out = buf if isinstance(buf, memoryview) else memoryview(buf)
        n = out.nbytes
        if n == 0:
            return
        if self.pattern.kind == "bytes":
            self._grow_template(n)
            rot = offset % len(self._pat)
            out[:n] = memoryview(self._template)[rot : rot + n]
            return
        if n > len(self._zeros):
            self._zeros = bytes(n)
        zeros = memoryview(self._zeros)[:n]
        skip = offset % _AES_BLOCK
        if skip:
            # Unaligned start (never used by the engine): generate from the block boundary, then cut.
            tmp = bytearray(n + skip)
            enc = _ctr_encryptor(self._key, offset - skip)
            enc.update_into(bytes(n + skip), tmp)
            out[:n] = tmp[skip:]
            self._enc, self._next = None, None
            return
        if self._enc is None or self._next != offset:
            self._enc = _ctr_encryptor(self._key, offset)
        self._enc.update_into(zeros, out)
        self._next = offset + n


def fill(pattern: Pattern, offset: int, buf: Buffer) -> None:
    """Fill ``buf`` with the bytes the device must hold at ``[offset, offset + len(buf))``."""
    PatternSource(pattern, chunk=len(buf)).fill(offset, buf)


def expected(pattern: Pattern, offset: int, length: int) -> bytes:
    """The expected content of ``[offset, offset + length)`` as bytes (convenience for small ranges)."""
    out = bytearray(length)
    fill(pattern, offset, out)
    return bytes(out)
