"""Every service answers grpc.health.v1 and server reflection, usable with no LabelLoop code at all.

The client side here imports nothing from labelloop.v1: service lists, descriptors and even a call
are built from what reflection returns, the way grpcurl works.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from labelloop.cli.local import SERVICES, LocalCluster

pytestmark = pytest.mark.integration

# Service -> (its gRPC service, methods it must offer).
API = {
    "store": (
        "labelloop.v1.DatasetStoreService",
        {"CreateDataset", "ListExamples", "AppendAnnotations", "CreateSnapshot", "ListDatasets"},
    ),
    "trainer": ("labelloop.v1.TrainerService", {"CreateTrainingRun", "GetOperation", "WatchOperation"}),
    "scorer": ("labelloop.v1.ScorerService", {"ScoreExamples"}),
    "selector": ("labelloop.v1.SelectorService", {"SelectBatch"}),
    "controller": ("labelloop.v1.ExperimentService", {"CreateExperiment", "ListRounds", "WatchExperiment"}),
}
# Other gRPC services a process serves beside its own: the controller hands out labeling tasks too.
ALSO_SERVED = {"controller": {"labelloop.v1.LabelingService"}}
# A read-only call that succeeds on an empty deployment: (method, list field of the response).
EMPTY_LIST_CALLS = {
    "store": ("ListDatasets", "datasets"),
    "trainer": ("ListOperations", "operations"),
    "controller": ("ListExperiments", "experiments"),
}
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def channel(services: LocalCluster, service: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(services.address(service)) as channel:
        yield channel


def reflect(channel: grpc.Channel, **request: str) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10)
    )
    assert len(replies) == 1
    assert not replies[0].HasField("error_response"), replies[0].error_response
    return replies[0]


def test_reflection_lists_the_service(channel: grpc.Channel, service: str) -> None:
    grpc_service, _ = API[service]
    reply = reflect(channel, list_services="")
    listed = {entry.name for entry in reply.list_services_response.service}
    assert listed == {grpc_service, *ALSO_SERVED.get(service, set()), HEALTH, REFLECTION}


def test_health_is_serving(channel: grpc.Channel, service: str) -> None:
    grpc_service, _ = API[service]
    stub = health_pb2_grpc.HealthStub(channel)
    for name in ("", grpc_service):  # the whole server, and the LabelLoop service by name
        assert stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="labelloop.v1.NoSuchService"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_describes_the_service(channel: grpc.Channel, service: str) -> None:
    grpc_service, methods = API[service]
    reply = reflect(channel, file_containing_symbol=grpc_service)
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    described = {
        f"{file.package}.{entry.name}": {method.name for method in entry.method}
        for file in files
        for entry in file.service
    }
    assert grpc_service in described, f"{grpc_service} not in {sorted(described)}"
    assert methods <= described[grpc_service]
    source = next(
        file for file in files if any(f"{file.package}.{s.name}" == grpc_service for s in file.service)
    )
    assert source.name.startswith("labelloop/v1/") and source.package == "labelloop.v1"


@pytest.mark.parametrize("service", sorted(EMPTY_LIST_CALLS))
def test_call_built_from_reflection_alone(channel: grpc.Channel, service: str) -> None:
    """Like `grpcurl -plaintext host:port labelloop.v1.X/ListY`: messages come from reflection."""
    grpc_service, _ = API[service]
    method_name, field = EMPTY_LIST_CALLS[service]
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName(grpc_service).methods_by_name[method_name]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{grpc_service}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    reply = call(request_class(page_size=10), timeout=30)
    assert reply.DESCRIPTOR.full_name == method.output_type.full_name
    assert field in reply.DESCRIPTOR.fields_by_name
    assert reply.next_page_token == ""
