"""The controller's shape: modules of a readable size, no import cycle among them, and nothing
imported from another service (services share only labelloop.core and the generated API)."""

from __future__ import annotations

import ast
from pathlib import Path

import labelloop.controller

PACKAGE = Path(labelloop.controller.__file__).parent
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = ["labelloop", "controller", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the labelloop modules (or packages) a file imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("labelloop")}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_modules_are_under_500_lines() -> None:
    long = {
        name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


def test_only_core_the_api_and_itself_are_imported() -> None:
    allowed = ("labelloop.core", "labelloop.v1", "labelloop.controller")
    foreign = {
        name: sorted(i for i in imports(path) if not i.startswith(allowed)) for name, path in MODULES.items()
    }
    assert not {name: found for name, found in foreign.items() if found}


def test_no_import_cycle() -> None:
    graph = {name: {i for i in imports(path) if i in MODULES and i != name} for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for following in sorted(graph[name]):
            visit(following, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
