"""What an image installs, derived from pyproject.toml: the requirement names of the base dependencies
plus those of the given extras, one a line; requirements.lock, used as constraints, gives the versions.

    python docker/requirements.py pyproject.toml [EXTRA ...] > /tmp/requirements.txt
    pip install -r /tmp/requirements.txt -c requirements.lock

Names without version specifiers: the lock pins every one (tests/deploy/test_images.py checks that), and
the trainer's CPU flavor installs torch's +cpu build first, which pyproject's `!=2.13.0+cpu` would reject.
Standard library only: it runs in the builder stage of docker/*.Dockerfile before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# A PEP 508 requirement's name and extras, e.g. "autogluon.multimodal" or "labelloop[trainer]".
_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(project: dict[str, Any], extras: Sequence[str]) -> list[str]:
    """Base dependencies, then each extra's, in pyproject's order; an extra that names the project
    itself (labelloop[trainer]) brings that extra's lines."""
    own = _canonical(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    lines: list[str] = []
    visited: set[str] = set()

    def add(spec: str) -> None:
        found = _NAME.match(spec)
        if found is None:
            raise SystemExit(f"not a requirement: {spec!r}")
        name, extras_text = found.group(1), found.group(2)
        wanted = [e.strip() for e in (extras_text or "").split(",") if e.strip()]
        if _canonical(name) == own:
            for extra in wanted:
                visit(extra)
            return
        _, semicolon, marker = spec.partition(";")
        line = (
            name + (f"[{','.join(wanted)}]" if wanted else "") + (f"; {marker.strip()}" if semicolon else "")
        )
        if line not in lines:
            lines.append(line)

    def visit(extra: str) -> None:
        if extra in visited:
            return
        if extra not in optional:
            raise SystemExit(f"pyproject.toml has no extra {extra!r} (it has {sorted(optional)})")
        visited.add(extra)
        for spec in optional[extra]:
            add(spec)

    for spec in project["dependencies"]:
        add(spec)
    for extra in extras:
        visit(extra)
    return lines


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    project = tomllib.loads(Path(argv[0]).read_text())["project"]
    print("\n".join(requirement_names(project, argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
