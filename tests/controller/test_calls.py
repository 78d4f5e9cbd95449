"""The controller's unary calls to other services (controller/clients.py `call`) retry exactly the faults
core/faults.py calls transient, over a real gRPC channel: a service that answers ABORTED or
RESOURCE_EXHAUSTED twice and then succeeds costs the experiment nothing, a permanent error is raised at
once as a domain error, and a paused experiment stops the retrying."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from labelloop.controller.clients import Interrupted, call
from labelloop.core.errors import FailedPrecondition, Unavailable
from labelloop.core.server import channel

from tests.support.ports import free_port

METHOD = "/labelloop.test.Flaky/Echo"


class Flaky:
    """Answers `codes` in turn, then echoes the request."""

    def __init__(self) -> None:
        self.codes: list[grpc.StatusCode] = []
        self.calls = 0

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.calls += 1
        if self.codes:
            context.abort(self.codes.pop(0), "not now")
        return request


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, grpc.UnaryUnaryMultiCallable]]:
    service = Flaky()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(service.echo)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("labelloop.test.Flaky", {"Echo": handler})]
    )
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    stub = channel(f"127.0.0.1:{port}").unary_unary(METHOD)
    try:
        yield service, stub
    finally:
        server.stop(0)


def test_transient_answers_are_retried_until_the_call_succeeds(flaky) -> None:
    service, stub = flaky
    service.codes = [grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE]
    assert call(stub, b"hello", what="echo", retry_seconds=30) == b"hello"
    assert service.calls == 4


def test_a_permanent_error_is_raised_at_once(flaky) -> None:
    service, stub = flaky
    service.codes = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(FailedPrecondition, match="echo failed with INVALID_ARGUMENT: not now"):
        call(stub, b"hello", what="echo", retry_seconds=30)
    assert service.calls == 1


def test_past_the_deadline_a_transient_fault_is_unavailable(flaky) -> None:
    service, stub = flaky
    service.codes = [grpc.StatusCode.ABORTED] * 100
    with pytest.raises(Unavailable, match="ABORTED"):
        call(stub, b"hello", what="echo", retry_seconds=0.5)


def test_an_interrupted_caller_stops_retrying(flaky) -> None:
    service, stub = flaky
    service.codes = [grpc.StatusCode.UNAVAILABLE] * 100
    with pytest.raises(Interrupted, match="echo: stopped retrying"):
        call(stub, b"hello", what="echo", retry_seconds=30, interrupted=lambda: True)
    assert service.calls == 1
