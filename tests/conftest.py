"""Shared fixtures: a real S3 server (SeaweedFS), and object stores on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from labelloop.core.config import StorageConfig
from labelloop.core.storage import LocalStore, ObjectStore, S3Store

from tests.support.seaweedfs import S3Server, start_seaweedfs


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


def s3_config(server: S3Server, bucket: str | None = None) -> StorageConfig:
    """A fresh bucket per use, so tests sharing the server never see each other's objects."""
    return StorageConfig(
        backend="s3",
        endpoint=server.endpoint,
        bucket=bucket or f"t-{uuid.uuid4().hex[:12]}",
        access_key=server.access_key,
        secret_key=server.secret_key,
    )


@pytest.fixture(params=["local", "s3"])
def storage_config(request: pytest.FixtureRequest, tmp_path: Path) -> StorageConfig:
    """Storage settings for each backend; tests using it run once per backend."""
    if request.param == "local":
        return StorageConfig(backend="local", root=tmp_path / "store")
    return s3_config(request.getfixturevalue("s3_server"))


@pytest.fixture
def object_store(storage_config: StorageConfig) -> ObjectStore:
    if storage_config.backend == "local":
        return LocalStore(storage_config.root)
    return S3Store(storage_config)
