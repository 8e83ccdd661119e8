"""The trees beside relay/ import each other one way only: testbed/ is shared, no loops.

testbed/ holds the real peers and tools that tests/, bench/ and fuzz/ all use, so it imports
none of them; bench/ and fuzz/ never import tests/ (what they need from it belongs in
testbed/); tests/ never imports fuzz/, and imports bench/ only where a test runs a benchmark
(the soak). Every import counts, at the top of a module or inside a function. import-linter
keeps relay/'s own floors (pyproject.toml); these trees are not packages it can see.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# tree -> the top-level packages of the repository it must not import
FORBIDDEN: dict[str, set[str]] = {
    "testbed": {"tests", "bench", "fuzz"},
    "bench": {"tests"},
    "fuzz": {"tests"},
    "tests": {"fuzz", "bench"},
}
# (importing file, imported module): the few crossings that are the point of the file
ALLOWED = {
    ("tests/e2e/test_soak.py", "bench.soak"),  # the suite runs the soak benchmark for 60 s
}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in a file; `from x import y` also yields x.y."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


@pytest.mark.parametrize("tree", sorted(FORBIDDEN))
def test_a_tree_imports_only_what_it_may(tree: str) -> None:
    files = sorted((ROOT / tree).rglob("*.py"))
    assert files, f"no Python files under {tree}/"
    crossings = set()
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[tree] and not any(
                    name == allowed_file and (module == allowed or module.startswith(allowed + "."))
                    for allowed_file, allowed in ALLOWED):
                crossings.add(f"{name}:{line}: {module.split('.')[0]}")
    assert not crossings, f"{tree}/ imports what it must not:\n" + "\n".join(sorted(crossings))
