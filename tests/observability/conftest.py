"""One LocalCluster (the five services as real processes, on free ports) shared by these tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labelloop.cli.local import LocalCluster
from labelloop.core.config import StorageConfig

from tests.support.cluster import cluster


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    workdir = tmp_path_factory.mktemp("observability")
    with cluster(workdir, StorageConfig(backend="local", root=workdir / "data")) as running:
        yield running
