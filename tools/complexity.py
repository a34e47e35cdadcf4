"""Function size and cyclomatic complexity of the shipped code (radon), with an explicit allowlist.

``python tools/complexity.py`` (run by ``./dev test``) fails when a function of the shipped packages

* has a cyclomatic complexity above :data:`MAX_COMPLEXITY` (20): never allowed, or
* is longer than :data:`MAX_LINES` (60 lines of code, docstring and blank lines not counted) or
  more complex than :data:`AIM_COMPLEXITY` (15) without a ``# Long on purpose: <why>`` comment in
  the comment block right above its ``def`` (or its decorators),

unless it is listed in :data:`ALLOWED` below: the offenders their owners are removing now.  The
list only shrinks; an entry that no longer offends is reported so that it can be deleted.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Function

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("host", "erase", "certs", "diagnostics", "hub", "station")
MAX_COMPLEXITY = 20
AIM_COMPLEXITY = 15
MAX_LINES = 60
MARKER = "# Long on purpose:"

#: "path:qualified name" of functions being split by other work in progress (hub: issue 11,
#: station/sync: issue 11, certs: issue 12).  Shrink it, never grow it.
ALLOWED: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Measure:
    path: str
    name: str
    line: int
    complexity: int
    lines: int
    explained: bool

    @property
    def key(self) -> str:
        return f"{self.path}:{self.name}"

    def problem(self) -> str | None:
        """Why this function offends (None when it does not)."""
        if self.complexity > MAX_COMPLEXITY:
            return f"complexity {self.complexity} > {MAX_COMPLEXITY}"
        if self.explained:
            return None
        if self.complexity > AIM_COMPLEXITY:
            return f"complexity {self.complexity} > {AIM_COMPLEXITY} without '{MARKER}'"
        if self.lines > MAX_LINES:
            return f"{self.lines} lines of code > {MAX_LINES} without '{MARKER}'"
        return None


def _code_lines(node: ast.AST, source: list[str]) -> int:
    """Lines of a function that hold code: no blank lines, comments or docstring."""
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    skip: set[int] = set()
    body = node.body
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        skip.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    end = node.end_lineno or node.lineno
    count = 0
    for n in range(node.lineno, end + 1):
        text = source[n - 1].strip()
        if n not in skip and text and not text.startswith("#"):
            count += 1
    return count


def _explained(node: ast.AST, source: list[str]) -> bool:
    """Whether the comment block right above the ``def`` (or its decorators) says why it is long."""
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    line = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    while line >= 1 and source[line - 1].strip().startswith("#"):
        if source[line - 1].strip().startswith(MARKER):
            return True
        line -= 1
    return False


def _functions(tree: ast.AST) -> dict[tuple[str, int], ast.AST]:
    """(name, line) -> def node, for matching radon's results to the syntax tree."""
    return {
        (n.name, n.lineno): n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def measure(path: Path) -> list[Measure]:
    text = path.read_text(encoding="utf-8")
    source = text.splitlines()
    nodes = _functions(ast.parse(text, str(path)))
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for block in cc_visit(text):
        items = [block, *getattr(block, "methods", [])] if not isinstance(block, Function) else [block]
        for fn in items:
            if not isinstance(fn, Function):
                continue
            node = nodes.get((fn.name, fn.lineno))
            if node is None:
                continue
            out.append(
                Measure(
                    rel,
                    fn.fullname,
                    fn.lineno,
                    fn.complexity,
                    _code_lines(node, source),
                    _explained(node, source),
                )
            )
            out.extend(_closures(fn, nodes, source, rel))
    return out


def _closures(
    fn: Function, nodes: dict[tuple[str, int], ast.AST], source: list[str], rel: str
) -> list[Measure]:
    out = []
    for inner in fn.closures:
        node = nodes.get((inner.name, inner.lineno))
        if node is not None:
            name = f"{fn.fullname}.{inner.name}"
            out.append(
                Measure(
                    rel,
                    name,
                    inner.lineno,
                    inner.complexity,
                    _code_lines(node, source),
                    _explained(node, source),
                )
            )
    return out


def shipped_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    measures = list(dict.fromkeys(m for path in shipped_files() for m in measure(path)))
    offenders = [(m, m.problem()) for m in measures if m.problem() is not None]
    new = [(m, why) for m, why in offenders if m.key not in ALLOWED]
    stale = sorted(ALLOWED - {m.key for m, _ in offenders})
    if "--all" in args:
        for m, why in offenders:
            print(f"{m.path}:{m.line}: {m.name}: {why}{'' if m.key not in ALLOWED else ' (allowed for now)'}")
    for m, why in new:
        print(f"{m.path}:{m.line}: {m.name}: {why}")
    for key in stale:
        print(f"notice: {key} no longer offends: delete it from ALLOWED in tools/complexity.py")
    worst = max(measures, key=lambda m: m.complexity)
    print(
        f"complexity: {len(measures)} functions, the most complex {worst.key} ({worst.complexity}); "
        f"{len(offenders) - len(new)} allowed for now, {len(new)} new offender(s)"
    )
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())
