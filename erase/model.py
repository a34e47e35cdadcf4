"""Pure data shared by the engine, the journal and certificates (the drive itself: host.identity).

Models validate on construction: an invalid instance cannot exist.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from erase.errors import InvalidModel

_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class Pattern:
    """What one pass writes.

    * ``kind="bytes"``: ``hex`` is a repeating byte pattern (1..512 bytes, e.g. ``"00"``, ``"924924"``),
      laid from absolute device offset 0, so the byte at offset ``o`` is ``pattern[o % len]``.
    * ``kind="prng"``: an AES-128-CTR keystream; ``seed`` (32 hex chars = 16-byte key) is recorded so any
      block can be regenerated: the 16-byte block at offset ``o`` is AES_k(counter = o // 16, big-endian).
    """

    kind: Literal["bytes", "prng"]
    hex: str | None = None
    seed: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind == "bytes":
            if self.seed is not None or self.hex is None or not _HEX.match(self.hex):
                raise InvalidModel(f"a byte pattern needs lowercase hex, got {self.hex!r}")
            if len(self.hex) // 2 > 512:
                raise InvalidModel("a byte pattern is at most 512 bytes long")
        elif self.kind == "prng":
            if self.hex is not None or self.seed is None or not _HEX.match(self.seed) or len(self.seed) != 32:
                raise InvalidModel("a prng pattern needs a 16-byte seed as 32 lowercase hex chars")
        else:
            raise InvalidModel(f"unknown pattern kind {self.kind!r}")

    @property
    def pattern_bytes(self) -> bytes:
        if self.hex is None:
            raise InvalidModel("not a byte pattern")
        return bytes.fromhex(self.hex)

    @property
    def key(self) -> bytes:
        if self.seed is None:
            raise InvalidModel("not a prng pattern")
        return bytes.fromhex(self.seed)

    def describe(self) -> str:
        if self.kind == "prng":
            return f"{self.label or 'random'} (AES-128-CTR, seed {self.seed})"
        return f"{self.label or 'pattern'} (0x{self.hex})"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pattern:
        return cls(kind=d["kind"], hex=d.get("hex"), seed=d.get("seed"), label=d.get("label", ""))


@dataclass(frozen=True)
class Range:
    """A byte range on the device, with what happened there (bad write, bad read, mismatch)."""

    offset: int
    length: int
    op: Literal["write", "read", "verify"] = "write"
    error: str = ""

    def __post_init__(self) -> None:
        if self.offset < 0 or self.length <= 0:
            raise InvalidModel(f"invalid range offset={self.offset} length={self.length}")

    @property
    def end(self) -> int:
        return self.offset + self.length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Range:
        return cls(
            offset=int(d["offset"]),
            length=int(d["length"]),
            op=d.get("op", "write"),
            error=d.get("error", ""),
        )


@dataclass(frozen=True)
class Progress:
    """A progress report from the engine, posted to the worker (which journals it, throttled)."""

    phase: Literal["write", "verify"]
    pass_index: int
    done: int  # bytes done in this phase (absolute offset reached for sequential work)
    total: int  # bytes to do in this phase
    rate: float  # bytes per second, smoothed
    synced: bool = False  # True when everything up to ``done`` has been fdatasync'd: a safe resume point
    errors: tuple[Range, ...] = field(default_factory=tuple)
