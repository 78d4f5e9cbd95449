"""The package's shape: hand-written modules of a readable size, no import cycle, and services that share
only `labelloop.core` and the generated API (`labelloop.v1`), never each other's modules."""

from __future__ import annotations

import ast
from pathlib import Path

import labelloop
import pytest

PACKAGE = Path(labelloop.__file__).parent
BENCH = Path(__file__).parents[1] / "bench"
SERVICES = ("store", "trainer", "scorer", "selector", "controller")
MAX_LINES = 500


def module_name(path: Path, root: Path, prefix: str) -> str:
    parts = [prefix, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the labelloop/bench modules (or packages) a file imports, anywhere in it.

    `from a.b import c` depends on the module a.b.c when there is one (Python imports it without
    re-running a.b's __init__), else on a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("labelloop", "bench")}


# Generated gRPC code is not ours to size or shape.
MODULES = {
    module_name(path, PACKAGE, "labelloop"): path
    for path in PACKAGE.rglob("*.py")
    if path.parent.name != "v1"
} | {module_name(path, BENCH, "bench"): path for path in BENCH.rglob("*.py")}


def test_the_scan_sees_every_service() -> None:
    for service in SERVICES:
        assert f"labelloop.{service}.service" in MODULES, service
    assert "bench.loop" in MODULES


def test_modules_are_under_500_lines() -> None:
    long = {
        name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_core_the_api_and_itself(service: str) -> None:
    allowed = ("labelloop.core", "labelloop.v1", f"labelloop.{service}")
    foreign = {
        name: sorted(i for i in imports(path) if not i.startswith(allowed))
        for name, path in MODULES.items()
        if name.startswith(f"labelloop.{service}")
    }
    assert not {name: found for name, found in foreign.items() if found}


def test_core_imports_no_service() -> None:
    services = tuple(f"labelloop.{s}" for s in SERVICES)
    assert not {
        name: found
        for name, path in MODULES.items()
        if name.startswith("labelloop.core")
        and (found := [i for i in imports(path) if i.startswith(services)])
    }


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
