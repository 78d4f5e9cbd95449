"""The authorization matrix: each role (and no token) against each RPC of each service, over TLS.

A server built by core.server with every labelloop.v1 service registered (their generated base
servicers answer UNIMPLEMENTED: a call that reaches one passed authentication and authorization),
and the expected matrix written out here, apart from core/auth.py's table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from labelloop.core.api import service_name
from labelloop.core.auth import ADMIN, ANNOTATOR, EXPERIMENTER, POLICY, SERVICE, hash_token
from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.config import SecurityConfig, Settings
from labelloop.core.server import Server
from labelloop.v1 import (
    dataset_store_pb2,
    dataset_store_pb2_grpc,
    experiments_pb2,
    experiments_pb2_grpc,
    labeling_pb2,
    labeling_pb2_grpc,
    scorer_pb2,
    scorer_pb2_grpc,
    selector_pb2,
    selector_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)

from tests.security.conftest import ANNOTATOR_ID, TOKENS, Pki
from tests.support.ports import free_port

MODULES = {
    dataset_store_pb2: dataset_store_pb2_grpc,
    trainer_pb2: trainer_pb2_grpc,
    scorer_pb2: scorer_pb2_grpc,
    selector_pb2: selector_pb2_grpc,
    experiments_pb2: experiments_pb2_grpc,
    labeling_pb2: labeling_pb2_grpc,
}
STORE, TRAINER, SCORER, SELECTOR, EXPERIMENTS, LABELING = (service_name(m) for m in MODULES)


def rpcs(service: str, *names: str) -> set[str]:
    return {f"/{service}/{name}" for name in names}


ALL_RPCS = {
    f"/{service_name(module)}/{method.name}"
    for module in MODULES
    for method in next(iter(module.DESCRIPTOR.services_by_name.values())).methods
}
STORE_READS = rpcs(
    STORE, "GetDataset", "ListDatasets", "ListExamples", "ListAnnotations", "GetSnapshot", "ListSnapshots"
)
# What each role may call; admin may call everything.
ALLOWED = {
    ADMIN: ALL_RPCS,
    EXPERIMENTER: STORE_READS
    | rpcs(TRAINER, "CreatePredictionRun", "GetOperation", "ListOperations", "WatchOperation")
    | rpcs(
        EXPERIMENTS,
        "CreateExperiment",
        "GetExperiment",
        "ListExperiments",
        "StartExperiment",
        "PauseExperiment",
        "ResumeExperiment",
        "CancelExperiment",
        "ListRounds",
        "WatchExperiment",
    )
    | rpcs(LABELING, "ListTasks", "GetLabelingReport", "ExportLabels"),
    ANNOTATOR: rpcs(STORE, "AppendAnnotations")
    | rpcs(LABELING, "LeaseTasks", "SubmitLabel", "SkipTask", "ListTasks"),
    SERVICE: STORE_READS
    | rpcs(STORE, "AppendAnnotations", "CreateSnapshot")
    | {rpc for rpc in ALL_RPCS if rpc.split("/")[1] in (TRAINER, SCORER, SELECTOR)},
}


def register_everything(server: grpc.Server) -> list[str]:
    for module, grpc_module in MODULES.items():
        name = next(iter(module.DESCRIPTOR.services_by_name))
        servicer = getattr(grpc_module, f"{name}Servicer")()
        getattr(grpc_module, f"add_{name}Servicer_to_server")(servicer, server)
    return [service_name(module) for module in MODULES]


def secure_settings(pki: Pki, tokens_file: Path, **changes: object) -> Settings:
    security = SecurityConfig(
        tls_cert=pki.path("server.crt"),
        tls_key=pki.path("server.key"),
        tls_ca=pki.path("ca.crt"),
        tokens_file=tokens_file,
        **changes,  # type: ignore[arg-type]
    )
    return Settings(grpc_port=free_port(), metrics_port=free_port(), security=security)


@pytest.fixture(scope="module")
def server(pki: Pki, tokens_file: Path) -> Iterator[Server]:
    server = Server("controller", secure_settings(pki, tokens_file), register_everything)
    server.start()
    yield server
    server.stop(grace=1)


def connect(server: Server, pki: Pki, token: str) -> grpc.Channel:
    return channel(f"127.0.0.1:{server.port}", CallerCredentials(token=token, ca_cert=pki.path("ca.crt")))


def request_for(method: str) -> object:
    """An empty request of the method's type; labeling requests name the annotator token's own id."""
    service, name = method.strip("/").split("/")
    module = next(m for m in MODULES if service_name(m) == service)
    descriptor = next(iter(module.DESCRIPTOR.services_by_name.values())).methods_by_name[name]
    request = message_factory.GetMessageClass(descriptor.input_type)()
    if hasattr(request, "annotator"):
        request.annotator = ANNOTATOR_ID
    if name == "AppendAnnotations":
        request.annotations.add(example_id="e1", annotator=ANNOTATOR_ID, label="a")
    return request


def invoke(ch: grpc.Channel, method: str, request: object) -> grpc.StatusCode:
    """The status a call ends with (OK never: the base servicers answer UNIMPLEMENTED)."""
    options = {"request_serializer": lambda m: m.SerializeToString(), "response_deserializer": bytes}
    streaming = method.endswith(("/WatchExperiment", "/WatchOperation"))
    try:
        if streaming:
            list(ch.unary_stream(method, **options)(request, timeout=10))
        else:
            ch.unary_unary(method, **options)(request, timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_the_policy_names_every_rpc() -> None:
    assert set(POLICY) >= ALL_RPCS, f"RPCs without a policy entry: {sorted(ALL_RPCS - set(POLICY))}"


@pytest.mark.parametrize("role", [None, ADMIN, EXPERIMENTER, ANNOTATOR, SERVICE])
def test_each_role_against_each_rpc(server: Server, pki: Pki, role: str | None) -> None:
    got: dict[str, grpc.StatusCode] = {}
    with connect(server, pki, TOKENS[role] if role else "") as ch:
        for method in sorted(ALL_RPCS):
            got[method] = invoke(ch, method, request_for(method))
    if role is None:
        expected = dict.fromkeys(ALL_RPCS, grpc.StatusCode.UNAUTHENTICATED)
    else:
        expected = {
            method: grpc.StatusCode.UNIMPLEMENTED
            if method in ALLOWED[role]
            else grpc.StatusCode.PERMISSION_DENIED
            for method in ALL_RPCS
        }
    wrong = {m: (got[m].name, expected[m].name) for m in ALL_RPCS if got[m] != expected[m]}
    assert not wrong, f"(got, expected) per RPC for {role}: {wrong}"


def test_a_refusal_names_the_role_needed(server: Server, pki: Pki) -> None:
    with connect(server, pki, TOKENS[EXPERIMENTER]) as ch:
        stub = dataset_store_pb2_grpc.DatasetStoreServiceStub(ch)
        with pytest.raises(grpc.RpcError) as refused:
            stub.DeleteDataset(dataset_store_pb2.DeleteDatasetRequest(name="datasets/x"), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "needs role admin" in refused.value.details()
    assert "experimenter" in refused.value.details()


def test_an_unknown_token_is_unauthenticated_and_never_echoed(server: Server, pki: Pki) -> None:
    with connect(server, pki, "guessed-token") as ch:
        stub = experiments_pb2_grpc.ExperimentServiceStub(ch)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListExperiments(experiments_pb2.ListExperimentsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "guessed-token" not in refused.value.details()
    assert "--token" in refused.value.details()


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("LeaseTasks", labeling_pb2.LeaseTasksRequest(parent="experiments/e", annotator="someone-else")),
        ("SubmitLabel", labeling_pb2.SubmitLabelRequest(task="t", annotator="someone-else", label="a")),
        ("SkipTask", labeling_pb2.SkipTaskRequest(task="t", annotator="")),
    ],
)
def test_an_annotator_cannot_act_as_another(server: Server, pki: Pki, method: str, request_: object) -> None:
    with connect(server, pki, TOKENS[ANNOTATOR]) as ch:
        code = invoke(ch, f"/{LABELING}/{method}", request_)
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_health_is_open_and_reflection_needs_a_token(server: Server, pki: Pki) -> None:
    with connect(server, pki, "") as anonymous:
        health = health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(anonymous)
        with pytest.raises(grpc.RpcError) as refused:
            next(
                reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with connect(server, pki, TOKENS[ANNOTATOR]) as known:
        reflect = reflection_pb2_grpc.ServerReflectionStub(known)
        answer = next(
            reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        )
        assert LABELING in {s.name for s in answer.list_services_response.service}


def test_reflection_can_be_turned_off(pki: Pki, tokens_file: Path) -> None:
    server = Server("controller", secure_settings(pki, tokens_file, reflection=False), register_everything)
    server.start()
    try:
        with connect(server, pki, TOKENS[ADMIN]) as ch:
            reflect = reflection_pb2_grpc.ServerReflectionStub(ch)
            with pytest.raises(grpc.RpcError) as refused:
                next(
                    reflect.ServerReflectionInfo(
                        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
                    )
                )
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=1)


def test_tokens_are_revoked_by_editing_the_file(pki: Pki, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.yaml"
    entry = {"name": "temp", "role": EXPERIMENTER, "sha256": hash_token("temporary")}
    tokens_file.write_text(yaml.safe_dump({"tokens": [entry]}))
    server = Server("controller", secure_settings(pki, tokens_file), register_everything)
    server.start()
    method = f"/{EXPERIMENTS}/ListExperiments"
    try:
        with connect(server, pki, "temporary") as ch:
            assert (
                invoke(ch, method, experiments_pb2.ListExperimentsRequest()) == grpc.StatusCode.UNIMPLEMENTED
            )
            tokens_file.write_text(yaml.safe_dump({"tokens": []}))
            assert (
                invoke(ch, method, experiments_pb2.ListExperimentsRequest())
                == grpc.StatusCode.UNAUTHENTICATED
            )
    finally:
        server.stop(grace=1)


def test_without_tokens_every_call_passes_and_a_warning_says_so(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(grpc_port=free_port(), metrics_port=free_port())
    with caplog.at_level(logging.WARNING, logger="labelloop.core.server"):
        server = Server("controller", settings, register_everything)
    assert any("authentication is off" in r.getMessage() for r in caplog.records)
    server.start()
    try:
        with channel(f"127.0.0.1:{server.port}", CallerCredentials()) as ch:
            method = f"/{STORE}/DeleteDataset"
            assert invoke(ch, method, request_for(method)) == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=1)
