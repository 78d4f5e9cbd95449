"""The shared server bootstrap: domain errors become gRPC statuses, health and metrics are served."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.core import errors
from labelloop.core.config import Settings
from labelloop.core.server import Server, channel
from labelloop.v1 import selector_pb2, selector_pb2_grpc

from tests.support.ports import free_port


class RaisingSelector(selector_pb2_grpc.SelectorServiceServicer):
    """A servicer whose only job is to raise the error named in the request's first excluded id."""

    def SelectBatch(self, request: selector_pb2.SelectBatchRequest, context: grpc.ServicerContext):
        kind = request.exclude_example_ids[0]
        if kind == "ok":
            return selector_pb2.SelectBatchResponse()
        if kind == "crash":
            raise RuntimeError("boom")
        raise getattr(errors, kind)(f"{kind} says what to fix")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    settings = Settings(grpc_port=free_port(), metrics_port=free_port())

    def register(grpc_server: grpc.Server) -> list[str]:
        selector_pb2_grpc.add_SelectorServiceServicer_to_server(RaisingSelector(), grpc_server)
        return ["labelloop.v1.SelectorService"]

    server = Server("selector", settings, register)
    server.start()
    yield server
    server.stop(grace=1)


def call(server: Server, kind: str) -> selector_pb2.SelectBatchResponse:
    stub = selector_pb2_grpc.SelectorServiceStub(channel(f"127.0.0.1:{server.port}"))
    return stub.SelectBatch(selector_pb2.SelectBatchRequest(exclude_example_ids=[kind]), timeout=10)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("InvalidArgument", grpc.StatusCode.INVALID_ARGUMENT),
        ("NotFound", grpc.StatusCode.NOT_FOUND),
        ("FailedPrecondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("AlreadyExists", grpc.StatusCode.ALREADY_EXISTS),
        ("crash", grpc.StatusCode.INTERNAL),
    ],
)
def test_errors_map_to_status_codes(server: Server, kind: str, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call(server, kind)
    assert info.value.code() == code
    assert ("says what to fix" if code != grpc.StatusCode.INTERNAL else "boom") in info.value.details()


def test_health_and_request_metrics(server: Server) -> None:
    call(server, "ok")
    health = health_pb2_grpc.HealthStub(channel(f"127.0.0.1:{server.port}"))
    for service in ("", "labelloop.v1.SelectorService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    port = server.settings.metrics_port_for("selector")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="SelectBatch"' in text
    assert 'grpc_code="INVALID_ARGUMENT"' in text
