"""Overwrite methods: a table of named pass sequences, expanded into concrete :class:`Pattern` lists.

Pure: no I/O.  Every random element of a method (random passes, nwipe's "random characters") is
derived from the job seed, so the seed alone regenerates every byte that was written, years later,
for verification or audit:

* random pass ``i`` (0-based index in the expanded list) uses the AES-128 key
  ``HMAC-SHA256(seed, b"pass" + i.to_bytes(4, "big"))[:16]``;
* a seed-derived pattern character ``c`` for pass ``i`` is
  ``HMAC-SHA256(seed, b"char" + i.to_bytes(4, "big"))[0]``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from erase.errors import EraseError, UnknownMethod
from erase.model import Pattern

#: One pass template: ``"random"`` (AES-CTR stream), ``"char"`` (one seed-derived byte),
#: ``"~char"`` (the bitwise complement of the previous ``"char"``), ``"custom"`` (the user's pattern),
#: or a lowercase hex byte pattern such as ``"00"`` or ``"924924"``.
PassTemplate = str

MIN_SEED_BYTES = 16
MAX_PATTERN_BYTES = 512


class InvalidMethodOption(EraseError):
    """An option of an erase method (rounds, custom pattern, seed) is not acceptable."""


@dataclass(frozen=True)
class MethodDef:
    name: str
    description: str  # one line, English
    passes: tuple[PassTemplate, ...]
    nist_note: str

    @property
    def pass_count(self) -> int:
        return len(self.passes)


_GUTMANN_FIXED = (
    "55",
    "aa",
    "924924",
    "492492",
    "249249",
    "00",
    "11",
    "22",
    "33",
    "44",
    "55",
    "66",
    "77",
    "88",
    "99",
    "aa",
    "bb",
    "cc",
    "dd",
    "ee",
    "ff",
    "924924",
    "492492",
    "249249",
    "6db6db",
    "b6db6d",
    "db6db6",
)

_CLEAR = "NIST SP 800-88 Rev.1 Clear for magnetic media when every addressable sector is written and verified"
_LEGACY = " Extra passes add time, not assurance, on modern drives (NIST SP 800-88 Rev.1 2.4)."

METHODS: dict[str, MethodDef] = {
    m.name: m
    for m in (
        MethodDef("zero", "One pass of zeros (0x00)", ("00",), _CLEAR + "."),
        MethodDef("one", "One pass of ones (0xFF)", ("ff",), _CLEAR + "."),
        MethodDef(
            "prng",
            "One pass of AES-128-CTR pseudorandom data",
            ("random",),
            _CLEAR + "; random data makes leftover old data stand out when sampled.",
        ),
        MethodDef(
            "dod-short",
            "DoD 5220.22-M short, 3 passes: 0x00, 0xFF, random (passes 1, 2 and 7 of the 7-pass)",
            ("00", "ff", "random"),
            _CLEAR + "." + _LEGACY,
        ),
        MethodDef(
            "dod-7",
            "DoD 5220.22-M ECE, 7 passes as nwipe: 0x00, 0xFF, random, char, char, complement, random",
            ("00", "ff", "random", "char", "char", "~char", "random"),
            _CLEAR
            + "; passes 4-5 use bytes derived from the job seed, pass 6 the complement of pass 5."
            + _LEGACY,
        ),
        MethodDef(
            "gutmann",
            "Gutmann, 35 passes: 4 random, the 27 fixed MFM/RLL patterns in table order, 4 random",
            ("random",) * 4 + _GUTMANN_FIXED + ("random",) * 4,
            _CLEAR + "; designed for 1990s MFM/RLL encodings." + _LEGACY,
        ),
        MethodDef(
            "hmg-is5-baseline",
            "HMG Infosec Standard 5 baseline: one pass of zeros",
            ("00",),
            _CLEAR + ".",
        ),
        MethodDef(
            "hmg-is5-enhanced",
            "HMG Infosec Standard 5 enhanced, 3 passes: 0x00, 0xFF, random",
            ("00", "ff", "random"),
            _CLEAR + "; the standard requires verification of the last pass." + _LEGACY,
        ),
        MethodDef(
            "rcmp-ops-ii",
            "RCMP TSSIT OPS-II, 7 passes: 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, random",
            ("00", "ff", "00", "ff", "00", "ff", "random"),
            _CLEAR + "; the standard requires verification of the last pass." + _LEGACY,
        ),
        MethodDef(
            "bsi-vsitr",
            "BSI VSITR, 7 passes: 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF, 0xAA",
            ("00", "ff", "00", "ff", "00", "ff", "aa"),
            _CLEAR + "." + _LEGACY,
        ),
        MethodDef(
            "ism",
            "Australian ISM: one pass of pseudorandom data (magnetic media)",
            ("random",),
            _CLEAR + "; ISM asks for 2 random passes on flash media (use rounds=2).",
        ),
        MethodDef(
            "custom",
            "One pass of a user-chosen byte pattern (1 to 512 bytes, hex)",
            ("custom",),
            _CLEAR + " when the pattern is written to every sector and verified.",
        ),
    )
}


def method_names() -> list[str]:
    """Names of every method, in table order."""
    return list(METHODS)


def _derive(seed: bytes, label: bytes, index: int) -> bytes:
    return hmac.new(seed, label + index.to_bytes(4, "big"), hashlib.sha256).digest()


def pass_key(seed: bytes, index: int) -> bytes:
    """The 16-byte AES key of random pass ``index`` of a job with ``seed``."""
    return _derive(seed, b"pass", index)[:16]


def pass_char(seed: bytes, index: int) -> int:
    """The seed-derived pattern byte of pass ``index`` (nwipe's "random character")."""
    return _derive(seed, b"char", index)[0]


_HEX_RE = re.compile(r"^[0-9a-f]+$")


def normalize_custom_hex(text: str) -> str:
    """``"0xDEAD beef"`` -> ``"deadbeef"``; raises :class:`InvalidMethodOption` when not 1..512 bytes of hex."""
    s = re.sub(r"[\s:_-]", "", text).lower()
    if s.startswith("0x"):
        s = s[2:]
    if not s or not _HEX_RE.match(s):
        raise InvalidMethodOption(
            f"custom pattern {text!r} is not hexadecimal", hint="give bytes as hex, e.g. 'a5' or '0xdeadbeef'"
        )
    if len(s) % 2:
        raise InvalidMethodOption(
            f"custom pattern {text!r} has an odd number of hex digits",
            hint="each byte needs two hex digits, e.g. '05' not '5'",
        )
    if len(s) // 2 > MAX_PATTERN_BYTES:
        raise InvalidMethodOption(
            f"custom pattern is {len(s) // 2} bytes long", hint=f"use at most {MAX_PATTERN_BYTES} bytes"
        )
    return s


def expand(
    name: str,
    *,
    rounds: int = 1,
    final_blank: bool = False,
    custom_hex: str | None = None,
    seed: bytes,
) -> list[Pattern]:
    """The concrete passes of ``name`` repeated ``rounds`` times, plus a 0x00 pass if ``final_blank``."""
    method = METHODS.get(name)
    if method is None:
        raise UnknownMethod(name, method_names())
    custom = _check_options(name, rounds, seed, custom_hex)
    templates = list(method.passes) * rounds
    total = len(templates) + (1 if final_blank else 0)
    out: list[Pattern] = []
    last_char: int | None = None
    for i, tpl in enumerate(templates):
        label = f"{name} pass {i + 1}/{total}"
        if tpl == "random":
            out.append(Pattern(kind="prng", seed=pass_key(seed, i).hex(), label=label + ": random"))
            continue
        if tpl == "char":
            last_char = pass_char(seed, i)
        hexs = _pass_hex(name, tpl, last_char, custom)
        shown = hexs if len(hexs) <= 16 else hexs[:16] + "..."
        out.append(Pattern(kind="bytes", hex=hexs, label=f"{label}: 0x{shown}"))
    if final_blank:
        out.append(Pattern(kind="bytes", hex="00", label=f"{name} pass {total}/{total}: final blank 0x00"))
    return out


def _check_options(name: str, rounds: int, seed: bytes, custom_hex: str | None) -> str | None:
    """Refuse impossible options; the normalized custom pattern of the ``custom`` method."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise InvalidMethodOption(f"rounds must be a whole number >= 1, got {rounds!r}")
    if not isinstance(seed, bytes) or len(seed) < MIN_SEED_BYTES:
        raise InvalidMethodOption(f"the job seed must be at least {MIN_SEED_BYTES} bytes")
    if name == "custom":
        if custom_hex is None:
            raise InvalidMethodOption(
                "the custom method needs a pattern", hint="pass the bytes to write as hex, e.g. 'a5'"
            )
        return normalize_custom_hex(custom_hex)
    if custom_hex is not None:
        raise InvalidMethodOption(f"method '{name}' takes no custom pattern", hint="use method 'custom'")
    return None


def _pass_hex(name: str, tpl: str, last_char: int | None, custom: str | None) -> str:
    """The bytes of a pattern pass: a random character (drawn by the caller), its complement, the
    operator's custom pattern, or the template's own bytes."""
    if tpl == "char":
        assert last_char is not None
        return f"{last_char:02x}"
    if tpl == "~char":
        if last_char is None:
            raise AssertionError(f"method {name}: '~char' without a preceding 'char'")
        return f"{last_char ^ 0xFF:02x}"
    if tpl == "custom":
        assert custom is not None
        return custom
    return tpl
