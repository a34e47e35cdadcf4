"""tools/complexity.py: the function size and complexity check that ./dev test runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import complexity


def branches(name: str, n: int, *, marker: bool = False) -> str:
    body = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(n))
    above = "# Long on purpose: a dispatch table would hide the cases.\n" if marker else ""
    return f"{above}def {name}(x: int) -> int:\n{body}    return -1\n\n\n"


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> dict[str, str | None]:
    monkeypatch.setattr(complexity, "ROOT", tmp_path)
    path = tmp_path / "module.py"
    path.write_text(source)
    return {m.name: m.problem() for m in complexity.measure(path)}


def test_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_body = "".join(f"    y = x + {i}\n" for i in range(61))
    found = problems(
        tmp_path,
        monkeypatch,
        branches("small", 5)
        + branches("complex", 16)
        + branches("explained", 16, marker=True)
        + branches("too_complex", 21, marker=True)
        + f'def long(x: int) -> int:\n    """A docstring\n    does not count."""\n{long_body}    return y\n',
    )
    assert found["small"] is None and found["explained"] is None
    assert found["complex"] == "complexity 17 > 15 without '# Long on purpose:'"
    assert found["too_complex"] == "complexity 22 > 20"  # never allowed, even explained
    assert found["long"] == "63 lines of code > 60 without '# Long on purpose:'"


def test_the_shipped_code_has_no_new_offender() -> None:
    assert complexity.main([]) == 0
