"""A real ScorerService on a free port, over a given object store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from labelloop.core.config import Settings, StorageConfig
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.scorer.scoring import Scorer
from labelloop.scorer.service import registrar
from labelloop.v1 import scorer_pb2_grpc as pb_grpc

from tests.support.ports import free_port


@contextmanager
def running_scorer(store: LocalStore) -> Iterator[pb_grpc.ScorerServiceStub]:
    settings = Settings(
        grpc_port=free_port(),
        metrics_port=free_port(),
        storage=StorageConfig(backend="local", root=store.root),
    )
    server = Server("scorer", settings, registrar(Scorer(store)))
    server.start()
    try:
        yield pb_grpc.ScorerServiceStub(channel(f"127.0.0.1:{server.port}"))
    finally:
        server.stop(grace=1)
