"""Pure data shared by the engine, the journal, discovery and certificates.

Models validate on construction: an invalid instance cannot exist.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from erase.errors import InvalidModel

Transport = Literal["sata", "ata", "nvme", "usb", "scsi", "sas", "mmc", "virtio", "loop", "unknown"]
MediaType = Literal["hdd", "ssd", "nvme", "usb", "mmc", "virtual", "unknown"]
TRANSPORTS = ("sata", "ata", "nvme", "usb", "scsi", "sas", "mmc", "virtio", "loop", "unknown")
MEDIA_TYPES = ("hdd", "ssd", "nvme", "usb", "mmc", "virtual", "unknown")

_HEX = re.compile(r"^(?:[0-9a-f]{2})+$")


@dataclass(frozen=True)
class DriveInfo:
    """What we know of a whole disk.  Identity is serial / WWN / model, never the /dev name."""

    path: str  # /dev/sda, /dev/loop3: where it is *now*; names change between boots
    size_bytes: int
    logical_sector_size: int
    physical_sector_size: int
    transport: str
    media_type: str
    rotational: bool
    removable: bool
    read_only: bool
    serial: str | None = None
    wwn: str | None = None
    model: str | None = None
    vendor: str | None = None
    firmware: str | None = None
    by_id: tuple[str, ...] = ()
    by_path: tuple[str, ...] = ()
    kernel_name: str = ""  # sda, nvme0n1, loop3
    backing_file: str | None = None  # loop devices only

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise InvalidModel(f"drive path must be absolute, got {self.path!r}")
        if self.size_bytes < 0:
            raise InvalidModel("drive size cannot be negative")
        for name in ("logical_sector_size", "physical_sector_size"):
            v = getattr(self, name)
            if v <= 0 or v & (v - 1):
                raise InvalidModel(f"{name} must be a power of two, got {v}")
        if self.transport not in TRANSPORTS:
            raise InvalidModel(f"unknown transport {self.transport!r}")
        if self.media_type not in MEDIA_TYPES:
            raise InvalidModel(f"unknown media type {self.media_type!r}")
        object.__setattr__(self, "by_id", tuple(self.by_id))
        object.__setattr__(self, "by_path", tuple(self.by_path))

    @property
    def identity(self) -> str:
        """A stable name for the drive: WWN, else model+serial, else the backing file or path."""
        if self.wwn:
            return f"wwn:{self.wwn}"
        if self.serial:
            return f"serial:{self.model or '?'}:{self.serial}"
        if self.backing_file:
            return f"file:{self.backing_file}"
        return f"path:{self.path}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["by_id"] = list(self.by_id)
        d["by_path"] = list(self.by_path)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriveInfo:
        known = set(cls.__dataclass_fields__)
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in known}
        kwargs["by_id"] = tuple(kwargs.get("by_id", ()))
        kwargs["by_path"] = tuple(kwargs.get("by_path", ()))
        return cls(**kwargs)


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
