"""One store + controller pair (real processes, no trainer) for the `labelloop` commands to talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core.config import StorageConfig

from tests.support.cluster import client_for, cluster, ingest_tabular_digits

ROWS = 200  # 140 pool examples after the 30% test split


@pytest.fixture(scope="package")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, LabelLoopClient]]:
    workdir = tmp_path_factory.mktemp("cli")
    local = cluster(
        workdir, StorageConfig(backend="local", root=workdir / "store"), services=("store", "controller")
    )
    with local:
        client = client_for(local)
        ingest_tabular_digits(client, workdir / "data", rows=ROWS)
        yield local, client
        client.close()
