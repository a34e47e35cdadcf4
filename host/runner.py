"""The one place that runs external commands.

Every firmware or diagnostic tool (smartctl, hdparm, nvme, sg_*, dmidecode, ...) is run through a
:class:`Runner`.  Commands are argv lists, never shell strings.  Dry-run, recording and replay are
wrappers around a runner, never ``if dry_run:`` branches in callers:

* :class:`SubprocessRunner` runs the real tool.
* :class:`RecordingRunner` runs through another runner and saves every result as a fixture file.
* :class:`ReplayRunner` answers from recorded fixture files: a whole machine faked from a probe dump.
  A missing recording fails loudly, naming the exact command to record.
* :class:`DryRunRunner` answers read-only commands from an inner runner and refuses to run anything
  marked as mutating, logging what it would have run.

Fixture files are named after their argv (see :func:`fixture_name`), as py-SMART's tests do, and
hold a small JSON header line followed by the raw stdout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from host.errors import CommandError, CommandTimeout, ToolMissing


@dataclass(frozen=True)
class CommandResult:
    """What a command did: its argv, exit code and output.  Never judged here: callers parse it."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult: ...

    def which(self, tool: str) -> bool: ...


def check_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """``argv`` as a tuple of strings; a shell string, an empty list or a non-string item is a bug."""
    if isinstance(argv, str) or not argv:
        raise TypeError("argv must be a non-empty list of strings, never a shell string")
    out = tuple(argv)
    for a in out:
        if not isinstance(a, str):
            raise TypeError(f"argv items must be strings, got {a!r}")
    return out


def find_tool(tool: str) -> str | None:
    """The path of ``tool``: on PATH, else installed with the station (next to its Python, as the
    console scripts of its venv are: ``tabula-opal`` on the live image's /opt/tabula/bin)."""
    return shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))


class SubprocessRunner:
    """Runs the real tool, with a timeout; no shell."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        base = dict(os.environ)
        base.update({"LC_ALL": "C", "LANG": "C"})
        if env:
            base.update(env)
        self._env = base

    def which(self, tool: str) -> bool:
        return find_tool(tool) is not None

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        args = check_argv(argv)
        path = find_tool(args[0])
        if path is None:
            raise ToolMissing(args[0])
        start = time.monotonic()
        try:
            proc = subprocess.run(
                [path, *args[1:]],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=self._env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(list(args), timeout) from exc
        return CommandResult(
            argv=args,
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            duration=time.monotonic() - start,
        )


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def fixture_name(argv: Sequence[str]) -> str:
    """File name for a recorded command: argv joined by '_', unsafe characters folded.

    ``["smartctl", "-a", "--json", "/dev/sda"]`` -> ``smartctl_-a_--json_dev_sda``.
    """
    parts = [_UNSAFE.sub("_", a).strip("_") or "_" for a in check_argv(argv)]
    name = "_".join(parts)
    return name[:200]


def write_fixture(directory: Path, result: CommandResult) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / fixture_name(result.argv)
    header = {"argv": list(result.argv), "returncode": result.returncode, "stderr": result.stderr}
    path.write_text(json.dumps(header) + "\n" + result.stdout)
    return path


def read_fixture(path: Path) -> CommandResult:
    text = path.read_text()
    header_line, _, stdout = text.partition("\n")
    header = json.loads(header_line)
    return CommandResult(
        argv=tuple(header["argv"]),
        returncode=int(header["returncode"]),
        stdout=stdout,
        stderr=str(header.get("stderr", "")),
    )


class MissingRecording(CommandError):
    def __init__(self, argv: Sequence[str], directory: Path) -> None:
        super().__init__(
            f"no recording for: {' '.join(argv)} (expected {directory / fixture_name(argv)})",
            hint="record it on a real or emulated machine with RecordingRunner",
        )


@dataclass
class ReplayRunner:
    """Answers commands from a directory of recordings: a fake machine.

    ``tools`` lists the tools the fake machine has; by default every tool that has at least one
    recording.  ``log`` keeps every argv asked, so tests can assert what was (not) run.
    ``overlays`` are directories looked up first, in order (a drive's state after a command: see
    :class:`erase.purge.machine.ScenarioRunner`).
    """

    directory: Path
    tools: frozenset[str] | None = None
    log: list[tuple[str, ...]] = field(default_factory=list)
    overlays: tuple[Path, ...] = ()

    def which(self, tool: str) -> bool:
        if self.tools is not None:
            return tool in self.tools
        prefix = fixture_name([tool]) + "_"
        return any(p.name.startswith(prefix) or p.name == tool for p in self.directory.iterdir())

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        args = check_argv(argv)
        self.log.append(args)
        if not self.which(args[0]):
            raise ToolMissing(args[0])
        name = fixture_name(args)
        for directory in (*self.overlays, self.directory):
            if (directory / name).exists():
                return read_fixture(directory / name)
        raise MissingRecording(args, self.directory)


@dataclass
class RecordingRunner:
    """Runs through ``inner`` and writes every result into ``directory``."""

    inner: Runner
    directory: Path

    def which(self, tool: str) -> bool:
        return self.inner.which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        result = self.inner.run(argv, timeout=timeout, mutating=mutating)
        write_fixture(self.directory, result)
        return result


@dataclass
class DryRunRunner:
    """Lets read-only commands through to ``inner``; mutating ones are logged and not run."""

    inner: Runner
    would_run: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> bool:
        return self.inner.which(tool)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, mutating: bool = False) -> CommandResult:
        args = check_argv(argv)
        if mutating:
            self.would_run.append(args)
            return CommandResult(argv=args, returncode=0, stdout="", stderr="dry-run: not run")
        return self.inner.run(args, timeout=timeout, mutating=False)
