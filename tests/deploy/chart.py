"""Renders and lints charts/labelloop with the real Helm engine (helm-python-sdk, Helm v4 as a library).

`python -m tests.deploy.chart` lints the chart strictly with the default values and every ci/*.yaml
(the `make chart-lint` target).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "labelloop"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
KUBE_VERSION = "1.30"  # the oldest Kubernetes the tests validate against (Chart.yaml allows >=1.27)
RELEASE, NAMESPACE = "labelloop", "ml"


@dataclass
class Manifest:
    template: str  # e.g. "labelloop/templates/trainer/deployment.yaml"
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(
    values: dict[str, Any] | None = None, name: str = RELEASE, namespace: str = NAMESPACE
) -> tuple[list[Manifest], str]:
    """Every rendered object, and NOTES.txt."""
    with helm_python.Chart.load(CHART) as chart:
        out = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    manifests = []
    for template, text in sorted(out.items()):
        if not template.endswith(".yaml"):
            continue
        manifests.extend(Manifest(template, doc) for doc in yaml.safe_load_all(text) if doc)
    notes = next((text for template, text in out.items() if template.endswith("NOTES.txt")), "")
    return manifests, notes


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm_python.lint(CHART, values or {}, strict=True, kube_version=f"v{KUBE_VERSION}.0")


def lint_problems(report: dict[str, Any]) -> list[str]:
    """Warnings and errors (severity >= 2) of a lint report; infos such as "icon is recommended" pass."""
    found = [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if m["severity"] >= 2]
    return found + list(report.get("errors", []))


def main() -> int:
    failed = False
    for label, values in [("defaults", {}), *((p.name, load_values(p)) for p in CI_VALUES)]:
        problems = lint_problems(lint(values))
        print(f"{'FAIL' if problems else 'ok  '} helm lint --strict {CHART.relative_to(ROOT)} ({label})")
        for problem in problems:
            print(f"     {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
