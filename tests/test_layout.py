"""The layout's rules: no module imports itself back through others, no file outgrows a
reader (350 lines), and every stored key is built in cells.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = {
    "lfxbench": ROOT / "lfxbench",
    "lfxbench.methods": ROOT / "methods",
    "lfxbench.metrics": ROOT / "metrics",
}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if package == "lfxbench" and path.relative_to(folder).parts[0] in (
                "methods",
                "metrics",
            ):
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def module_level_imports(path: Path, known: set[str]) -> set[str]:
    """What a module imports when it is imported: not inside functions or TYPE_CHECKING."""
    imported = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else []:
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                candidates = [inner.module] + [
                    f"{inner.module}.{alias.name}" for alias in inner.names
                ]
                imported.update(name for name in candidates if name in known)
            elif isinstance(inner, ast.Import):
                imported.update(alias.name for alias in inner.names if alias.name in known)
    return imported


def test_no_module_imports_itself_back():
    found = modules()
    graph = {name: module_level_imports(path, set(found)) for name, path in found.items()}
    # A package's own __init__ is imported before its modules: not an edge back.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                pytest.fail("import circle: " + " -> ".join([*trail, name, target]))
            if target not in state:
                visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_file_is_over_350_lines(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= 350, f"{modules()[name].relative_to(ROOT)}: {lines} lines"


def test_stored_keys_are_built_in_cells_only():
    for name, path in modules().items():
        if name != "lfxbench.cells" and "stable_hash(" in path.read_text():
            assert name in ("lfxbench.storage", "lfxbench.suite_checks"), (
                name
            )  # its definition; config dedup
