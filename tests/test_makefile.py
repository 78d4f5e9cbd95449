"""The Makefile: every name declared .PHONY has a rule (a declared but missing target fails only when
someone types it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def makefile_lines() -> list[str]:
    return re.sub(r"\\\n", " ", (ROOT / "Makefile").read_text()).splitlines()


def test_every_phony_name_has_a_rule() -> None:
    lines = makefile_lines()
    phony = [name for line in lines if line.startswith(".PHONY:") for name in line.split(":", 1)[1].split()]
    assert {"venv", "test", "test-fast", "lint", "typecheck", "check-protos", "bench"} <= set(phony)
    # A rule: "name [name...]: prerequisites" at the start of a line (not a recipe, not `:=`).
    rules = {
        name
        for line in lines
        if (found := re.match(r"^([A-Za-z0-9_.$()/ -]+?)\s*:(?!=)", line)) and not line.startswith(".PHONY")
        for name in found.group(1).split()
    }
    missing = [name for name in phony if name not in rules]
    assert not missing, f".PHONY names without a rule: {missing}"


def test_fast_tests_leave_out_every_declared_marker() -> None:
    """`make test-fast` deselects every marker pyproject declares (service processes, training, clusters):
    a new marker must be placed on one side or the other."""
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    names = [marker.split(":")[0].strip() for marker in markers]
    fast = next(line for line in makefile_lines() if line.startswith("FAST :="))
    assert fast.split(":=", 1)[1].strip() == " and ".join(f"not {name}" for name in names)
