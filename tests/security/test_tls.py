"""TLS on a service's port: plaintext and untrusted callers refused, mTLS, certificates reloaded,
/metrics over HTTPS; and the real dataset store behind TLS and tokens."""

from __future__ import annotations

import shutil
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from labelloop.core.channels import CallerCredentials, channel
from labelloop.core.config import SecurityConfig, Settings, StorageConfig
from labelloop.core.server import Server
from labelloop.core.storage import LocalStore
from labelloop.sample_data import write_wine_tabular
from labelloop.store import DatasetStore
from labelloop.store.service import registrar
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc

from tests.security.conftest import ANNOTATOR_ID, TOKENS, Pki
from tests.security.test_authorization import register_everything
from tests.support.ports import free_port


def start(security: SecurityConfig, register: object = register_everything) -> Server:
    settings = Settings(grpc_port=free_port(), metrics_port=free_port(), security=security)
    server = Server("selector", settings, register)  # type: ignore[arg-type]
    server.start()
    return server


def health(server: Server, credentials: CallerCredentials) -> grpc.StatusCode:
    """OK when a fresh channel with these credentials completes a call, else the failure's code."""
    with channel(f"127.0.0.1:{server.port}", credentials) as ch:
        try:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[Server]:
    server = start(SecurityConfig(tls_cert=pki.path("server.crt"), tls_key=pki.path("server.key")))
    yield server
    server.stop(grace=1)


def test_tls_callers_that_trust_the_ca_are_served(tls_server: Server, pki: Pki) -> None:
    assert health(tls_server, CallerCredentials(ca_cert=pki.path("ca.crt"))) == grpc.StatusCode.OK


def test_a_plaintext_caller_is_refused_on_a_tls_port(tls_server: Server) -> None:
    assert health(tls_server, CallerCredentials()) == grpc.StatusCode.UNAVAILABLE


def test_a_caller_trusting_another_ca_is_refused(tls_server: Server, pki: Pki) -> None:
    assert (
        health(tls_server, CallerCredentials(ca_cert=pki.path("other-ca.crt"))) == grpc.StatusCode.UNAVAILABLE
    )


def test_mtls_refuses_callers_without_a_certificate_of_our_ca(pki: Pki) -> None:
    server = start(
        SecurityConfig(
            tls_cert=pki.path("server.crt"),
            tls_key=pki.path("server.key"),
            tls_ca=pki.path("ca.crt"),
            client_auth=True,
        )
    )
    ca = pki.path("ca.crt")
    try:
        assert health(server, CallerCredentials(ca_cert=ca)) == grpc.StatusCode.UNAVAILABLE
        foreign = CallerCredentials(
            ca_cert=ca, client_cert=pki.path("other.crt"), client_key=pki.path("other.key")
        )
        assert health(server, foreign) == grpc.StatusCode.UNAVAILABLE
        ours = CallerCredentials(
            ca_cert=ca, client_cert=pki.path("client.crt"), client_key=pki.path("client.key")
        )
        assert health(server, ours) == grpc.StatusCode.OK
    finally:
        server.stop(grace=1)


def test_replaced_certificate_files_serve_new_connections(pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.path("server.crt"), cert)
    shutil.copy(pki.path("server.key"), key)
    server = start(SecurityConfig(tls_cert=cert, tls_key=key))
    old_ca = CallerCredentials(ca_cert=pki.path("ca.crt"))
    new_ca = CallerCredentials(ca_cert=pki.path("other-ca.crt"))
    try:
        assert health(server, old_ca) == grpc.StatusCode.OK
        assert health(server, new_ca) == grpc.StatusCode.UNAVAILABLE
        # A renewal by another CA, as cert-manager would write it into the Secret's volume.
        shutil.copy(pki.path("other.crt"), cert)
        shutil.copy(pki.path("other.key"), key)
        assert health(server, new_ca) == grpc.StatusCode.OK
        assert health(server, old_ca) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=1)


def test_metrics_over_https_only(pki: Pki) -> None:
    security = SecurityConfig(tls_cert=pki.path("server.crt"), tls_key=pki.path("server.key"), metrics="tls")
    server = start(security)
    port = server.settings.metrics_port
    try:
        context = ssl.create_default_context(cafile=str(pki.path("ca.crt")))
        with urllib.request.urlopen(f"https://localhost:{port}/metrics", context=context, timeout=10) as page:
            assert b"grpc_server_started_total" in page.read()
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=10).read()
    finally:
        server.stop(grace=1)


def test_metrics_can_be_turned_off() -> None:
    server = start(SecurityConfig(metrics="off"))
    try:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.settings.metrics_port}/metrics", timeout=5)
    finally:
        server.stop(grace=1)


@pytest.fixture(scope="module")
def store(pki: Pki, tokens_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real dataset store over TLS with tokens; a dataset "wine" made by the admin."""
    root = tmp_path_factory.mktemp("secure-store")
    security = SecurityConfig(
        tls_cert=pki.path("server.crt"),
        tls_key=pki.path("server.key"),
        tls_ca=pki.path("ca.crt"),
        tokens_file=tokens_file,
    )
    settings = Settings(
        storage=StorageConfig(backend="local", root=root / "data"),
        grpc_port=free_port(),
        metrics_port=free_port(),
        security=security,
    )
    server = Server(
        "store", settings, registrar(DatasetStore(LocalStore(settings.storage.root), import_roots=[root]))
    )
    server.start()
    address = f"127.0.0.1:{server.port}"
    manifest = write_wine_tabular(root / "wine")
    admin = pb_grpc.DatasetStoreServiceStub(channel(address, credentials(pki, "admin")))
    admin.CreateDataset(
        pb.CreateDatasetRequest(dataset_id="wine", manifest_uri=str(manifest), label_column="label"),
        timeout=60,
    )
    yield address
    server.stop(grace=1)


def credentials(pki: Pki, role: str) -> CallerCredentials:
    return CallerCredentials(token=TOKENS[role], ca_cert=pki.path("ca.crt"))


def test_the_real_store_binds_annotators_to_their_own_id(store: str, pki: Pki) -> None:
    stub = pb_grpc.DatasetStoreServiceStub(channel(store, credentials(pki, "annotator")))
    reader = pb_grpc.DatasetStoreServiceStub(channel(store, credentials(pki, "experimenter")))
    examples = reader.ListExamples(pb.ListExamplesRequest(parent="datasets/wine", page_size=50), timeout=30)
    example = next(e for e in examples.examples if e.split == pb.SPLIT_POOL)  # labels are for pool examples

    def append(annotator: str, request_id: str) -> pb.AppendAnnotationsResponse:
        annotation = pb.Annotation(example_id=example.example_id, annotator=annotator, label="class_0")
        request = pb.AppendAnnotationsRequest(
            parent="datasets/wine", annotations=[annotation], request_id=request_id
        )
        return stub.AppendAnnotations(request, timeout=30)

    assert append(ANNOTATOR_ID, "own").appended_count == 1
    with pytest.raises(grpc.RpcError) as refused:
        append("someone-else", "forged")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert repr(ANNOTATOR_ID) in refused.value.details()
    stored = reader.ListAnnotations(pb.ListAnnotationsRequest(parent="datasets/wine"), timeout=30).annotations
    assert [a.annotator for a in stored] == [ANNOTATOR_ID]


def test_the_real_store_keeps_datasets_to_admins(store: str, pki: Pki) -> None:
    for role in ("experimenter", "annotator", "service"):
        stub = pb_grpc.DatasetStoreServiceStub(channel(store, credentials(pki, role)))
        with pytest.raises(grpc.RpcError) as refused:
            stub.DeleteDataset(pb.DeleteDatasetRequest(name="datasets/wine"), timeout=30)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, role
    reader = pb_grpc.DatasetStoreServiceStub(channel(store, credentials(pki, "experimenter")))
    assert (
        reader.GetDataset(pb.GetDatasetRequest(name="datasets/wine"), timeout=30).dataset.name
        == "datasets/wine"
    )


def test_a_plaintext_health_port_for_probes_serves_health_only(pki: Pki, tokens_file: Path) -> None:
    health_port = free_port()
    security = SecurityConfig(
        tls_cert=pki.path("server.crt"),
        tls_key=pki.path("server.key"),
        tokens_file=tokens_file,
        health_port=health_port,
    )
    server = start(security)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe:
            reply = health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = pb_grpc.DatasetStoreServiceStub(probe)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListDatasets(pb.ListDatasetsRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=1)
    with grpc.insecure_channel(f"127.0.0.1:{health_port}") as probe, pytest.raises(grpc.RpcError):
        health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=2)


def test_a_server_name_override_for_port_forwarding(pki: Pki, tmp_path: Path) -> None:
    """A certificate for labelloop-controller only, reached at 127.0.0.1 as through kubectl port-forward."""
    from labelloop.cli.secure import make_leaf

    cert, key = make_leaf(
        pki.path("ca.crt").read_bytes(), pki.path("ca.key").read_bytes(), "c", ["labelloop-controller"]
    )
    (tmp_path / "c.crt").write_bytes(cert)
    (tmp_path / "c.key").write_bytes(key)
    server = start(SecurityConfig(tls_cert=tmp_path / "c.crt", tls_key=tmp_path / "c.key"))
    try:
        plain = CallerCredentials(ca_cert=pki.path("ca.crt"))
        assert health(server, plain) == grpc.StatusCode.UNAVAILABLE
        named = CallerCredentials(ca_cert=pki.path("ca.crt"), server_name="labelloop-controller")
        assert health(server, named) == grpc.StatusCode.OK
    finally:
        server.stop(grace=1)
