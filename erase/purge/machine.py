"""Which machine the station talks to: the real one, or a recorded one replayed from fixtures.

Everything that reaches a drive goes through a :class:`Machine`: its command runner, how a device
name resolves to a drive, where the drive's data can be read (for evidence) and written (overwrite).

* :class:`RealMachine`: :class:`host.runner.SubprocessRunner`, :func:`host.drives.resolve`,
  the device itself.
* :class:`ReplayMachine` (``TABULA_REPLAY_MACHINE=DIR``, hidden, for tests and demonstrations): a
  machine faked from a directory of recordings (``tests/fixtures/machines/*``,
  ``tests/fixtures/purge/*``).  Drives come from the recorded ``lsblk -J -b -O``; commands are
  answered by a :class:`ScenarioRunner`, which also plays each mutating command's recorded effect:
  the state the drive is in afterwards (``after-*`` sub-directories of recordings) and what happened
  to its data, applied to a disk image file (``TABULA_REPLAY_DISK=FILE``).  Without a disk image a
  replayed machine can plan but never run a job.  It never touches a real device.

This is a wrapper chosen once (:func:`current_machine`), not ``if replay:`` branches in callers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from erase.purge.errors import ReplayError
from erase.purge.planner import TEMP_PASSWORD
from erase.purge.probe import parse_hdparm_n
from host.drives import DriveNotFound, resolve
from host.identity import DriveInfo
from host.lsblk import parse_lsblk
from host.runner import CommandResult, MissingRecording, ReplayRunner, Runner, SubprocessRunner, fixture_name

REPLAY_ENV = "TABULA_REPLAY_MACHINE"
REPLAY_DISK_ENV = "TABULA_REPLAY_DISK"


@dataclass(frozen=True)
class MachineDrive:
    info: DriveInfo
    allowed: bool
    reasons: tuple[str, ...] = ()
    entry: Any = None  # host.drives.DriveEntry on a real machine


class Machine(Protocol):
    name: str

    @property
    def runner(self) -> Runner: ...

    def resolve(self, device: str, *, include_loop: bool) -> MachineDrive: ...

    def data_path(self, info: DriveInfo) -> str: ...

    def rescan(self, info: DriveInfo) -> None: ...

    def temp_password(self) -> str: ...


class RealMachine:
    name = "this machine"

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner or SubprocessRunner()

    @property
    def runner(self) -> Runner:
        return self._runner

    def resolve(self, device: str, *, include_loop: bool) -> MachineDrive:
        entry = resolve(device, include_loop=include_loop)
        return MachineDrive(
            entry.info,
            entry.protection.allowed,
            tuple(r.message for r in entry.protection.reasons),
            entry,
        )

    def data_path(self, info: DriveInfo) -> str:
        return info.path

    def rescan(self, info: DriveInfo) -> None:
        """Ask the kernel to re-read the disk's capacity (after an HPA/DCO change)."""
        path = Path("/sys/block") / info.kernel_name / "device" / "rescan"
        if info.kernel_name and path.exists():
            path.write_text("1")

    def temp_password(self) -> str:
        return TEMP_PASSWORD


# -- replay ------------------------------------------------------------------------------------


_STATE_DIRS = (
    (("format",), "after-format"),
    (("sanitize",), "after-sanitize"),
    (("--sanitize-crypto-scramble",), "after-sanitize"),
    (("--sanitize-block-erase",), "after-sanitize"),
    (("--sanitize-overwrite",), "after-sanitize"),
    (("--security-set-pass",), "after-security-set-pass"),
    (("--security-erase",), "after-security-erase"),
    (("--security-erase-enhanced",), "after-security-erase"),
    (("-N",), "after-hpa-set"),
    (("rtcwake",), "after-suspend"),
)


def _derive_scenario(directory: Path) -> dict[str, Any]:
    """A scenario from a QEMU lab recording's machine.json: each mutating command's effect."""
    path = directory / "machine.json"
    if not path.exists():
        return {"commands": {}}
    machine = json.loads(path.read_text())
    commands: dict[str, Any] = {}
    for cmd in machine.get("mutating_commands_in_order", []):
        argv = cmd["argv"]
        state = None
        for words, sub in _STATE_DIRS:
            if any(w in argv for w in words) and (directory / sub).is_dir():
                state = sub
                break
        disk = {"zero": "zero", "pattern": "unchanged"}.get(cmd.get("disk_after"), "random")
        commands[fixture_name(argv)] = {"state": state, "disk": disk}
    return {"commands": commands, "derived_from": "machine.json"}


class ScenarioRunner:
    """A :class:`host.runner.ReplayRunner` that also plays the recorded effect of every mutating command.

    ``scenario.json`` (or, for QEMU lab recordings, ``machine.json``) maps a command's fixture name
    to ``{"state": "after-x" | null, "disk": "zero" | "ones" | "random" | "unchanged"}``.  After such
    a command, recordings are looked up in ``directory/<state>/`` first, then in ``directory``, and
    the disk image gets the effect.  The state survives across processes in ``state_file``.
    """

    def __init__(self, directory: Path, image: Path | None = None, state_file: Path | None = None) -> None:
        self.directory = directory
        self.image = image
        self.state_file = state_file
        path = directory / "scenario.json"
        self.scenario: dict[str, Any] = (
            json.loads(path.read_text()) if path.exists() else _derive_scenario(directory)
        )
        tools = self.scenario.get("tools")
        self.replay = ReplayRunner(directory, tools=frozenset(tools) if tools is not None else None)
        self._state: str | None = None
        self._asked: dict[tuple[str | None, str], int] = {}

    @property
    def log(self) -> list[tuple[str, ...]]:
        """Every argv asked, in order."""
        return self.replay.log

    # state -------------------------------------------------------------------------------------
    @property
    def state(self) -> str | None:
        if self.state_file is not None and self.state_file.exists():
            value = json.loads(self.state_file.read_text()).get("state")
            return None if value is None else str(value)
        return self._state

    def _set_state(self, state: str | None) -> None:
        self._state = state
        if self.state_file is not None:
            self.state_file.write_text(json.dumps({"state": state}))

    # runner ------------------------------------------------------------------------------------
    def which(self, tool: str) -> bool:
        return self.replay.which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        state = self.state
        self.replay.overlays = (
            *self._next_answer(argv, state),
            *((self.directory / state,) if state else ()),
        )
        result = self.replay.run(argv, timeout=timeout, mutating=mutating)
        effect = self.scenario.get("commands", {}).get(fixture_name(argv))
        if effect is not None:
            if not mutating:
                raise ReplayError(f"{' '.join(argv)} changes the drive but was not run as mutating")
            if effect.get("state", "keep") != "keep":
                self._set_state(effect.get("state"))
            self._apply(str(effect.get("disk", "unchanged")))
        return result

    def _next_answer(self, argv: Sequence[str], state: str | None) -> tuple[Path, ...]:
        """For a command the drive answers differently each time it is asked in one state (a status
        polled while an operation runs): the next directory of its ``sequences`` entry for that
        state, the last one repeating (counted in this process).

        ``"sequences": {"after-sanitize": {"nvme_sanitize-log_dev_nvme0_-o_json": ["poll-1", "poll-2"]}}``
        """
        key = fixture_name(argv)
        steps = self.scenario.get("sequences", {}).get(state or "initial", {}).get(key)
        if not steps:
            return ()
        n = self._asked.get((state, key), 0)
        self._asked[(state, key)] = n + 1
        return (self.directory / steps[min(n, len(steps) - 1)],)

    def _apply(self, disk: str) -> None:
        if disk == "unchanged" or self.image is None:
            return
        size = self.image.stat().st_size
        with open(self.image, "r+b") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                if disk == "zero":
                    f.write(bytes(n))
                elif disk == "ones":
                    f.write(b"\xff" * n)
                elif disk == "random":
                    f.write(os.urandom(n))
                else:
                    raise ReplayError(f"unknown disk effect {disk!r} in the scenario")
                left -= n
            f.flush()
            os.fsync(f.fileno())


class ReplayMachine:
    """A recorded machine (see the module docstring)."""

    def __init__(self, directory: Path, image: Path | None = None) -> None:
        if not directory.is_dir():
            raise ReplayError(f"no recorded machine at {directory}")
        self.directory = directory
        self.image = image
        self.name = f"recorded machine {directory.name}"
        state = image.with_name(image.name + ".replay-state.json") if image is not None else None
        self._runner = ScenarioRunner(directory, image=image, state_file=state)

    @property
    def runner(self) -> ScenarioRunner:
        return self._runner

    def drives(self) -> list[DriveInfo]:
        return parse_lsblk(self._runner.run(["lsblk", "-J", "-b", "-O"]).stdout)

    def resolve(self, device: str, *, include_loop: bool) -> MachineDrive:
        for info in self.drives():
            if device in (info.path, info.serial, info.wwn, info.kernel_name):
                size = self.image.stat().st_size if self.image is not None else None
                # The image is the whole medium: the accessible size, or the native size of a drive
                # recorded with a hidden area (HPA/AMA) that a step may remove.
                if size is not None and size not in (info.size_bytes, self._native_bytes(info)):
                    raise ReplayError(
                        f"the disk image {self.image} has {size} bytes, the recorded drive {info.size_bytes}"
                    )
                return MachineDrive(info, True)
        raise DriveNotFound(f"{device} is not a drive of the {self.name}")

    def _native_bytes(self, info: DriveInfo) -> int | None:
        """The native size the recorded ``hdparm -N`` reports (None without such a recording)."""
        if not self._runner.which("hdparm"):
            return None
        try:
            hpa = parse_hdparm_n(self._runner.run(["hdparm", "-N", info.path]).stdout)
        except MissingRecording:
            return None
        return hpa.native * info.logical_sector_size if hpa is not None else None

    def data_path(self, info: DriveInfo) -> str:
        if self.image is None:
            raise ReplayError(
                f"the {self.name} has no disk image: it can plan but not erase",
                hint=f"set {REPLAY_DISK_ENV}=FILE (an image of the recorded drive's size)",
            )
        return str(self.image)

    def rescan(self, info: DriveInfo) -> None:
        return None

    def temp_password(self) -> str:
        return str(self._runner.scenario.get("password", "p"))


def current_machine() -> Machine:
    """The machine named by the environment: a replayed recording, else this machine."""
    directory = os.environ.get(REPLAY_ENV)
    if directory:
        image = os.environ.get(REPLAY_DISK_ENV)
        return ReplayMachine(Path(directory), Path(image) if image else None)
    return RealMachine()
