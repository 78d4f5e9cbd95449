"""Fixtures for the deployment tests: rendered chart variants (each rendered once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import kubernetes_validate.utils
import pytest

from tests.deploy.chart import CI_VALUES, Manifest, load_values, render

VARIANTS = {"defaults": {}} | {p.stem: load_values(p) for p in CI_VALUES}


@pytest.fixture(scope="session", autouse=True)
def _cached_kubernetes_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its 1.3 MB definitions file for every object; read each file once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils, "schema_contents", cache(kubernetes_validate.utils.schema_contents)
        )
        yield


@cache
def _rendered(variant: str) -> tuple[list[Manifest], str]:
    return render(VARIANTS[variant])


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def manifests(variant: str) -> list[Manifest]:
    return _rendered(variant)[0]


def rendered(variant: str) -> list[Manifest]:
    return _rendered(variant)[0]


def notes(variant: str) -> str:
    return _rendered(variant)[1]


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [m.doc for m in manifests if m.kind == kind and (name is None or m.name == name)]


def one(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]
