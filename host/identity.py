"""A drive's identity: what we know of a whole disk, independent of where it is attached.

Identity is serial / WWN / model, never the ``/dev`` name (names change between boots).  The model
validates on construction: an invalid instance cannot exist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from host.errors import InvalidDrive

Transport = Literal["sata", "ata", "nvme", "usb", "scsi", "sas", "mmc", "virtio", "loop", "unknown"]
MediaType = Literal["hdd", "ssd", "nvme", "usb", "mmc", "virtual", "unknown"]
TRANSPORTS = ("sata", "ata", "nvme", "usb", "scsi", "sas", "mmc", "virtio", "loop", "unknown")
MEDIA_TYPES = ("hdd", "ssd", "nvme", "usb", "mmc", "virtual", "unknown")


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
            raise InvalidDrive(f"drive path must be absolute, got {self.path!r}")
        if self.size_bytes < 0:
            raise InvalidDrive("drive size cannot be negative")
        for name in ("logical_sector_size", "physical_sector_size"):
            v = getattr(self, name)
            if v <= 0 or v & (v - 1):
                raise InvalidDrive(f"{name} must be a power of two, got {v}")
        if self.transport not in TRANSPORTS:
            raise InvalidDrive(f"unknown transport {self.transport!r}")
        if self.media_type not in MEDIA_TYPES:
            raise InvalidDrive(f"unknown media type {self.media_type!r}")
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
