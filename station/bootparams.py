"""The live image's kernel command line: what the ``tabula.*`` parameters ask for.  Pure.

Kernel parameters (``tabula.*``) read by :func:`parse_boot_params`:

``tabula.lang=fr|en``            language of the TUI and certificates
``tabula.keymap=NAME``           console keyboard, a loadkeys keymap (``fr``, ``fr-latin9``,
                                 ``be-latin1``, ``fr_CH``, ``us``...; default ``fr`` with
                                 ``tabula.lang=fr``, else the kernel's ``us``): French workshops
                                 type confirmations on AZERTY keyboards
``tabula.policy=METHOD``         default erase method offered by the TUI
``tabula.bench=1``               bench (diagnostics) mode of the TUI
``tabula.sync=URL``              where certificates are synchronised (http:// or https://)
``tabula.technician=NAME``       who erases: the certificates' person (quote a name with spaces:
                                 ``tabula.technician="Camille Martin"``); the TUI does not ask then
``tabula.org=NAME``              the technician's organisation (quoted likewise)
``tabula.auto=METHOD``           headless mode: erase every unprotected drive with METHOD
``tabula.verify=none|last|all``  verification of the headless mode (default ``last``)
``tabula.countdown=N``           seconds of the cancellable countdown (default 10, at least 3)
``tabula.lot=REF``               the donation lot of the drives the headless mode erases (signed in
                                 their certificates, e.g. ``tabula.lot=LOT-2026-03``)
``tabula.after=poweroff|wait``   after a successful headless run (default ``wait``)
``tabula.boot=SPEC``             the boot medium (read by :mod:`host.protection`, not here)

An invalid value never starts anything: it is ignored with a warning that is shown on the console
(an invalid ``tabula.auto`` means *no* headless run).

Its own module so that the console session reads the command line without importing the headless
bench mode (:mod:`station.autorun`) and what that needs: the boot-to-TUI time counts every import.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from certs.limits import PERSON_FIELD_MAX
from erase.methods import method_names
from erase.record import VerifyPolicy
from host import refs
from station import operator as people

DEFAULT_COUNTDOWN = 10
MIN_BOOT_COUNTDOWN = 3
MAX_COUNTDOWN = 3600
LANGS = ("en", "fr")
#: A console keymap name as loadkeys takes it (``fr``, ``fr-latin9``, ``be-latin1``, ``fr_CH``...).
KEYMAP_NAME = re.compile(r"[a-z][A-Za-z0-9_-]{0,31}")
VERIFY_CHOICES: tuple[VerifyPolicy, ...] = ("none", "last", "all")


# -- kernel command line ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BootParams:
    """What the ``tabula.*`` kernel parameters ask for; ``warnings`` explains every value ignored."""

    lang: str | None = None
    keymap: str | None = None
    policy: str | None = None
    bench: bool = False
    sync: str | None = None
    technician: str | None = None
    org: str | None = None
    auto: str | None = None
    verify: VerifyPolicy = "last"
    countdown: int = DEFAULT_COUNTDOWN
    after: Literal["poweroff", "wait"] = "wait"
    lot: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def environment(self) -> dict[str, str]:
        """Environment variables for the console session (the TUI and the CLI read them)."""
        env: dict[str, str] = {}
        if self.lang:
            env["TABULA_LANG"] = self.lang
        keymap = self.keymap or ("fr" if self.lang == "fr" else None)
        if keymap:
            env["TABULA_KEYMAP"] = keymap  # tabula-session loads it on the Linux console
        if self.policy:
            env["TABULA_POLICY"] = self.policy
        if self.bench:
            env["TABULA_BENCH"] = "1"
        if self.sync:
            env["TABULA_SYNC"] = self.sync
        if self.technician:
            env[people.TECHNICIAN_ENV] = self.technician
        if self.org:
            env[people.ORGANISATION_ENV] = self.org
        if self.auto:
            env["TABULA_AUTO"] = self.auto
            env["TABULA_AFTER"] = self.after
        return env


def _words(text: str) -> list[str]:
    """The kernel's own split: spaces separate words, except inside double quotes (which are dropped)."""
    words: list[str] = []
    current: list[str] = []
    quoted = False
    started = False
    for c in text:
        if c == '"':
            quoted = not quoted
            started = True
        elif c.isspace() and not quoted:
            if started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(c)
            started = True
    if started:
        words.append("".join(current))
    return words


def _tokens(text: str) -> list[tuple[str, str, bool]]:
    """(key, value, has '=') for every word before ``--``; quotes around a value are dropped."""
    out = []
    for token in _words(text):
        if token == "--":
            break
        key, eq, value = token.partition("=")
        out.append((key, value, bool(eq)))
    return out


#: What one ``tabula.KEY=VALUE`` sets (field -> value), and the warning when it is ignored or changed.
_Read = tuple[dict[str, Any], str | None]


def _read_bench(value: str, has_value: bool) -> _Read:
    if not has_value or value.lower() in ("1", "yes", "true", "on"):
        return {"bench": True}, None
    if value.lower() in ("0", "no", "false", "off"):
        return {"bench": False}, None
    return {}, f"tabula.bench={value} ignored: use tabula.bench=1"


def _read_lang(value: str, has_value: bool) -> _Read:
    if value in LANGS:
        return {"lang": value}, None
    return {}, f"tabula.lang={value} ignored: use en or fr"


def _read_keymap(value: str, has_value: bool) -> _Read:
    if KEYMAP_NAME.fullmatch(value):
        return {"keymap": value}, None
    return {}, f"tabula.keymap={value} ignored: a keymap name such as fr, be-latin1 or us"


def _read_policy(value: str, has_value: bool) -> _Read:
    if value in method_names():
        return {"policy": value}, None
    return {}, f"tabula.policy={value} ignored: not an erase method"


def _read_auto(value: str, has_value: bool) -> _Read:
    methods = method_names()
    if value in methods:
        return {"auto": value}, None
    return {}, (
        f"tabula.auto={value} is not an erase method: the headless erase will NOT run "
        f"(methods: {', '.join(sorted(methods))})"
    )


def _read_person(field_name: str) -> Callable[[str, bool], _Read]:
    """``tabula.technician=`` / ``tabula.org=``: a name, within a certificate's limits."""

    def read(value: str, has_value: bool) -> _Read:
        name = value.strip()
        key = "technician" if field_name == "technician" else "org"
        if not name or len(name) > PERSON_FIELD_MAX or any(ord(c) < 32 for c in name):
            return {}, f"tabula.{key}={value} ignored: a name of 1 to {PERSON_FIELD_MAX} characters is needed"
        return {field_name: name}, None

    return read


def _read_sync(value: str, has_value: bool) -> _Read:
    if value.startswith(("http://", "https://")) and len(value) > len("https://"):
        return {"sync": value}, None
    return {}, f"tabula.sync={value} ignored: an http:// or https:// URL is needed"


def _read_verify(value: str, has_value: bool) -> _Read:
    if value in VERIFY_CHOICES:
        return {"verify": value}, None
    return {}, f"tabula.verify={value} ignored: use none, last or all (default last)"


def _read_countdown(value: str, has_value: bool) -> _Read:
    try:
        seconds = int(value)
    except ValueError:
        return {}, f"tabula.countdown={value} ignored: a number of seconds is needed"
    if seconds < MIN_BOOT_COUNTDOWN:
        return {"countdown": MIN_BOOT_COUNTDOWN}, (
            f"tabula.countdown={value} raised to {MIN_BOOT_COUNTDOWN} s (the minimum)"
        )
    return {"countdown": min(seconds, MAX_COUNTDOWN)}, None


def _read_after(value: str, has_value: bool) -> _Read:
    if value in ("poweroff", "wait"):
        return {"after": value}, None
    return {}, f"tabula.after={value} ignored: use poweroff or wait (default wait)"


def _read_lot(value: str, has_value: bool) -> _Read:
    lot = refs.clean(value)
    problem = refs.lot_problem(lot)
    if problem is None:
        return {"lot": lot}, None
    return {}, f"tabula.lot={value} ignored: {problem}"


#: One reader per known key; ``tabula.boot`` is read by host.protection, not here.
_READERS: dict[str, Callable[[str, bool], _Read]] = {
    "lang": _read_lang,
    "keymap": _read_keymap,
    "policy": _read_policy,
    "bench": _read_bench,
    "sync": _read_sync,
    "technician": _read_person("technician"),
    "org": _read_person("org"),
    "auto": _read_auto,
    "verify": _read_verify,
    "countdown": _read_countdown,
    "after": _read_after,
    "lot": _read_lot,
    "boot": lambda value, has_value: ({}, None),
}


def parse_boot_params(text: str) -> BootParams:
    """The ``tabula.*`` parameters of a kernel command line.  Never raises: bad values become warnings."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value, has_value in _tokens(text):
        if not key.startswith("tabula."):
            continue
        reader = _READERS.get(key[len("tabula.") :])
        if reader is None:
            warnings.append(f"unknown boot parameter {key} ignored")
            continue
        read, warning = reader(value, has_value)
        values.update(read)
        if warning:
            warnings.append(warning)
    return BootParams(**values, warnings=tuple(warnings))


def read_boot_params(cmdline: Path = Path("/proc/cmdline")) -> BootParams:
    return parse_boot_params(cmdline.read_text(errors="replace"))
