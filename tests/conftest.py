from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from station.i18n import DEFAULT_LANGUAGE, set_language
from tests.loopdev import have_root, loop_device


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked 'root' need loop devices.  CI runs as root; refuse to pretend otherwise there.
    if have_root():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run as root: the block-I/O tests need loop devices")
    skip = pytest.mark.skip(reason="needs root and /dev/loop-control (run as root, as CI does)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


LoopFactory = Callable[..., str]


@pytest.fixture(autouse=True)
def _language_back_to_english() -> Iterator[None]:
    """``station ... --lang fr`` sets the process's language (as it should for one command): the next
    test starts in the default language again, whatever the previous one asked for."""
    yield
    set_language(DEFAULT_LANGUAGE)


@pytest.fixture(autouse=True)
def _isolated_tabula_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the machine's real station state (/var/lib/tabula): each gets its own.

    Every test's station has a technician, as the live image's ``tabula.technician=`` gives one
    (``TABULA_TECHNICIAN``): certificates name who erased, ``station erase`` refuses to run without,
    and the TUI asks at first start.  The tests of that requirement remove it.
    """
    home = tmp_path_factory.mktemp("tabula-home")
    monkeypatch.setenv("TABULA_HOME", str(home))
    monkeypatch.setenv("TABULA_TECHNICIAN", "Test Technician")
    monkeypatch.setenv("TABULA_ORG", "Test Workshop")
    return home


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A test's own station home (``TABULA_HOME``), not yet created: the station makes what it needs."""
    h = tmp_path / "home"
    monkeypatch.setenv("TABULA_HOME", str(h))
    return h


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[LoopFactory]:
    """make_loop(size, sector_size=512, fill=None, name=...) -> '/dev/loopN', detached at teardown."""
    with ExitStack() as stack:
        counter = iter(range(1_000_000))

        def factory(size: int, **kw: object) -> str:
            kw.setdefault("name", f"disk{next(counter)}.img")
            return stack.enter_context(loop_device(tmp_path, size, **kw))  # type: ignore[arg-type]

        yield factory
