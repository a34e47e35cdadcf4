"""The shape of the code: no import circles between files, imports at the top, a light CLI.

The layers themselves (host < erase < certs, diagnostics < hub, station; Textual, httpx, SQLAlchemy
each in one place) are import-linter contracts in pyproject.toml, checked by ``lint-imports``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("host", "erase", "certs", "diagnostics", "hub", "station")

#: Files that still import inside functions without saying why; their owners are removing them.
#: Shrink this list, never grow it.
IMPORTS_IN_FUNCTIONS_LEFT = {
    "hub/cli.py": 2,
    "hub/service.py": 1,
    "hub/testing.py": 2,
    "station/sync/cli.py": 1,
    "station/sync/config.py": 2,
}


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import each other, directly or not (Tarjan's strongly connected
    components of the import graph), each sorted; single modules are not cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative depth-first search: the graph is deep enough to worry about recursion.
        work: list[tuple[str, Iterator[str]]] = []

        def enter(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)
            work.append((node, iter(sorted(graph.find_modules_directly_imported_by(node)))))

        enter(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    enter(child)
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.z")
    graph.add_import(importer="a.z", imported="a.x")
    assert import_cycles(graph) == [["a.x", "a.y", "a.z"]]


def test_no_import_cycle_between_files() -> None:
    """Every import counts: at the top, inside functions, under TYPE_CHECKING."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = import_cycles(graph)
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _imports_in_functions(path: Path) -> list[int]:
    """Line numbers of the imports inside functions that carry no 'start-up time' comment above
    (above them, or above the block of imports they end)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import | ast.ImportFrom):
                first = inner.lineno  # the comment covers the block of imports right below it
                while first > 1 and lines[first - 2].lstrip().startswith(("from ", "import ")):
                    first -= 1
                above = " ".join(lines[max(0, first - 3) : first - 1]).lower()
                if "start-up time" not in above:
                    found.append(inner.lineno)
    return sorted(set(found))


def test_imports_inside_functions_say_why() -> None:
    """An import inside a function hides a dependency: only to keep a heavy one out of start-up."""
    offenders = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            lines = _imports_in_functions(path)
            if len(lines) > IMPORTS_IN_FUNCTIONS_LEFT.get(rel, 0):
                offenders[rel] = lines
    assert not offenders, (
        "imports inside functions without a '# Start-up time: ...' comment above them: "
        f"{offenders} (move them to the top of the file)"
    )


def test_headless_commands_start_without_textual() -> None:
    """`station erase`, `station drives`... never load Textual (the TUI is imported when opened)."""
    code = "import sys, station.cli; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False).returncode == 0
