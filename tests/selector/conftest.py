"""A real selector gRPC server on a local store, shared by the selector's service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.selector.service import registrar
from labelloop.v1 import selector_pb2_grpc as pb_grpc

from tests.support.ports import free_port


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalStore, pb_grpc.SelectorServiceStub]]:
    store = LocalStore(tmp_path_factory.mktemp("selector-store"))
    settings = Settings(
        grpc_port=free_port(),
        metrics_port=free_port(),
        storage=StorageConfig(backend="local", root=store.root),
    )
    server = Server("selector", settings, registrar(store))
    server.start()
    yield store, pb_grpc.SelectorServiceStub(channel(f"127.0.0.1:{server.port}"))
    server.stop(grace=1)
