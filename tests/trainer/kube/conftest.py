"""Fixtures of the Kubernetes executor tests: the API double, a local store, a clock, executors."""

from __future__ import annotations

from pathlib import Path

import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.storage import LocalStore
from labelloop.trainer.executors.kubernetes import KubernetesExecutor

from tests.trainer.kube.jobs import T0, Clock, template_env
from tests.trainer.kube.kube_double import FakeKubernetesApi


@pytest.fixture
def api() -> FakeKubernetesApi:
    return FakeKubernetesApi()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 60)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))


@pytest.fixture
def executor(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, settings: Settings
) -> KubernetesExecutor:
    return KubernetesExecutor(
        settings, store, env=template_env(), batch_api=api, core_api=api, clock=clock, cache_seconds=0
    )
