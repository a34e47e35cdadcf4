"""Pattern generation against an independent reference (AES-ECB of counters, modular byte indexing)."""

from __future__ import annotations

import mmap

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from erase.model import Pattern
from erase.patterns import PatternSource, expected, fill


def ref_prng(key: bytes, offset: int, length: int) -> bytes:
    """AES-128-CTR written out by hand: encrypt each 16-byte big-endian counter with AES-ECB."""
    first = offset // 16
    last = (offset + length + 15) // 16
    counters = b"".join(i.to_bytes(16, "big") for i in range(first, last))
    stream = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(counters)
    skip = offset - first * 16
    return stream[skip : skip + length]


def ref_bytes(pat: bytes, offset: int, length: int) -> bytes:
    return bytes(pat[(offset + i) % len(pat)] for i in range(length))


def reference(p: Pattern, offset: int, length: int) -> bytes:
    if p.kind == "prng":
        return ref_prng(p.key, offset, length)
    return ref_bytes(p.pattern_bytes, offset, length)


KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PRNG = Pattern(kind="prng", seed=KEY.hex())


def test_prng_known_answer_fips197() -> None:
    # FIPS-197 C.1: AES-128 of 00112233..ff with key 000102..0f = 69c4e0d86a7b0430d8cdb78070b4c55a.
    # Our stream at the offset whose counter is 0x00112233...ff must be exactly that block.
    counter = int("00112233445566778899aabbccddeeff", 16)
    assert expected(PRNG, counter * 16, 16).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


@settings(max_examples=60, deadline=None)
@given(
    hexs=st.binary(min_size=1, max_size=40).map(bytes.hex),
    offset=st.integers(0, 1 << 40),
    length=st.integers(0, 5000),
)
def test_byte_pattern_phase_is_absolute(hexs: str, offset: int, length: int) -> None:
    p = Pattern(kind="bytes", hex=hexs)
    buf = bytearray(length)
    fill(p, offset, buf)
    assert bytes(buf) == ref_bytes(bytes.fromhex(hexs), offset, length)


@settings(max_examples=60, deadline=None)
@given(block=st.integers(0, 1 << 36), length=st.integers(0, 9000), skew=st.integers(0, 15))
def test_prng_matches_reference_at_any_offset(block: int, length: int, skew: int) -> None:
    offset = block * 16 + skew
    buf = bytearray(length)
    fill(PRNG, offset, buf)
    assert bytes(buf) == ref_prng(KEY, offset, length)


def test_sequential_source_continues_and_random_access_rekeys() -> None:
    src = PatternSource(PRNG, chunk=4096)
    m = mmap.mmap(-1, 1 << 16)
    view = memoryview(m)
    # sequential: 4 chunks of odd (but 16-aligned) sizes, then a jump back, then a jump forward
    plan = [(0, 4096), (4096, 8192), (12288, 48), (12336, 1000), (160, 4096), (1 << 30, 512)]
    for off, n in plan:
        src.fill(off, view[:n])
        assert bytes(view[:n]) == ref_prng(KEY, off, n), (off, n)


def test_content_tag_identifies_identical_byte_content_only() -> None:
    three = PatternSource(Pattern(kind="bytes", hex="924924"))
    assert three.content_tag(0, 4096) == three.content_tag(3 * 1000, 4096)
    assert three.content_tag(0, 4096) != three.content_tag(1, 4096)
    assert three.content_tag(0, 4096) != three.content_tag(0, 512)
    assert PatternSource(PRNG).content_tag(0, 4096) is None


def test_large_fill_into_mmap_matches_reference() -> None:
    n = (1 << 20) + 512
    m = mmap.mmap(-1, n)
    for p in (PRNG, Pattern(kind="bytes", hex="db6db6"), Pattern(kind="bytes", hex="00")):
        fill(p, 7 * 4096, m)
        assert m[:n] == reference(p, 7 * 4096, n)
