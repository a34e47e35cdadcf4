"""How fast media are overwritten, for time estimates only (plans, the TUI, firmware steps).

Sustained sequential write rates in bytes per second, by :attr:`host.identity.DriveInfo.media_type`:
conservative figures for common drives of each kind.  They never decide anything; a job's real
speed comes from its journal.
"""

from __future__ import annotations

OVERWRITE_RATE: dict[str, float] = {
    "hdd": 150e6,
    "ssd": 400e6,
    "nvme": 1.0e9,
    "usb": 30e6,
    "mmc": 20e6,
    "virtual": 400e6,
    "unknown": 80e6,
}


def overwrite_rate(media_type: str) -> float:
    """The estimated overwrite rate of a media type (unknown media: the slow default)."""
    return OVERWRITE_RATE.get(media_type, OVERWRITE_RATE["unknown"])
