"""The shared server bootstrap: domain errors become gRPC statuses, health and metrics are served."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.core import errors, metrics
from labelloop.core.api import service_name
from labelloop.core.config import DEFAULT_PORTS, Settings
from labelloop.core.server import Server, channel
from labelloop.v1 import selector_pb2, selector_pb2_grpc
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port


class RaisingSelector(selector_pb2_grpc.SelectorServiceServicer):
    """A servicer whose only job is to raise the error named in the request's first excluded id."""

    def SelectBatch(self, request: selector_pb2.SelectBatchRequest, context: grpc.ServicerContext):
        kind = request.exclude_example_ids[0]
        if kind == "ok":
            return selector_pb2.SelectBatchResponse()
        if kind == "crash":
            raise RuntimeError("boom")
        if kind == "storage-down":  # what the S3 client raises when nothing answers
            raise ConnectionRefusedError("connection refused by the object store")
        raise getattr(errors, kind)(f"{kind} says what to fix")


SELECTOR_SERVICE = service_name(selector_pb2)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    settings = Settings(grpc_port=free_port(), metrics_port=free_port())

    def register(grpc_server: grpc.Server) -> list[str]:
        selector_pb2_grpc.add_SelectorServiceServicer_to_server(RaisingSelector(), grpc_server)
        return [SELECTOR_SERVICE]

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


def metrics_page(server: Server) -> str:
    port = server.settings.metrics_port_for(server.service)
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def handled(server: Server, code: str) -> float:
    """grpc_server_handled_total of SelectBatch with this code, as the server's /metrics page shows it."""
    wanted = {
        "grpc_service": SELECTOR_SERVICE,
        "grpc_method": "SelectBatch",
        "grpc_type": "unary",
        "grpc_code": code,
    }
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_page(server))
        for sample in family.samples
        if sample.name == "grpc_server_handled_total" and sample.labels == wanted
    )


def test_health_and_request_metrics(server: Server) -> None:
    # The counters are process-wide (other tests of this module call the server too): compare deltas.
    ok, invalid = handled(server, "OK"), handled(server, "INVALID_ARGUMENT")
    call(server, "ok")
    with pytest.raises(grpc.RpcError):
        call(server, "InvalidArgument")
    health = health_pb2_grpc.HealthStub(channel(f"127.0.0.1:{server.port}"))
    for service in ("", SELECTOR_SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert (handled(server, "OK"), handled(server, "INVALID_ARGUMENT")) == (ok + 1, invalid + 1)


def families(text: str) -> set[str]:
    """Metric families of an exposition; a counter's `_created` companion counts as the counter."""
    return {family.name.removesuffix("_created") for family in text_string_to_metric_families(text)}


def test_metrics_page_shows_only_this_services_metrics(server: Server) -> None:
    """The selector's page: process and gRPC metrics and its own domain metric, no other service's."""
    page = families(metrics_page(server))
    assert {"process_cpu_seconds", "grpc_server_handled", "grpc_server_handling_seconds"} <= page
    assert {name for name in page if name.startswith("labelloop_")} == {
        "labelloop_selector_selected_examples"
    }


def test_each_service_registry_holds_its_own_domain_metrics() -> None:
    assert set(metrics.REGISTRIES) == set(DEFAULT_PORTS), "one registry per service"
    domain = {
        service: {
            name for name in families(generate_latest(registry).decode()) if name.startswith("labelloop_")
        }
        for service, registry in metrics.REGISTRIES.items()
    }
    assert all(domain.values()), f"a service without its own metrics: {domain}"
    for service, names in domain.items():
        for other, other_names in domain.items():
            assert other == service or not names & other_names, (service, other, names & other_names)
    assert "labelloop_experiment_test_accuracy" in domain["controller"]
    assert "labelloop_trainer_fit_seconds" in domain["trainer"]


def test_a_registrar_naming_an_unknown_service_is_refused() -> None:
    settings = Settings(grpc_port=free_port(), metrics_port=free_port())

    def register(grpc_server: grpc.Server) -> list[str]:
        selector_pb2_grpc.add_SelectorServiceServicer_to_server(RaisingSelector(), grpc_server)
        return ["labelloop.v1.SelectorServise"]

    with pytest.raises(ValueError, match=r"SelectorServise.*not services of labelloop.v1"):
        Server("selector", settings, register)


def test_refused_requests_log_one_warning_without_traceback(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad request is the caller's business: one WARNING line naming the status, no traceback;
    an unexpected error is ours: logged at ERROR with its traceback."""
    with caplog.at_level("INFO"), pytest.raises(grpc.RpcError):
        call(server, "InvalidArgument")
    refused = [r for r in caplog.records if "InvalidArgument says what to fix" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in refused] == [("WARNING", None)]
    assert "SelectBatch answered INVALID_ARGUMENT" in refused[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= 40 or r.exc_info]
    caplog.clear()
    with caplog.at_level("INFO"), pytest.raises(grpc.RpcError):
        call(server, "crash")
    crashed = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(crashed) == 1 and crashed[0].exc_info is not None


def test_a_fault_answers_unavailable_with_one_warning(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage that does not answer is no bug of ours: UNAVAILABLE (callers retry), one WARNING line."""
    with caplog.at_level("INFO"), pytest.raises(grpc.RpcError) as info:
        call(server, "storage-down")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "SelectBatch cannot complete now, retry: ConnectionRefusedError" in info.value.details()
    logged = [r for r in caplog.records if "ConnectionRefusedError" in r.getMessage()]
    assert [(r.levelname, r.exc_info) for r in logged] == [("WARNING", None)]
