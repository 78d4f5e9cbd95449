"""DatasetStoreService over real gRPC: status codes, and a whole dataset lifecycle."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.sample_data import write_digits_images, write_wine_tabular
from labelloop.store import DatasetStore
from labelloop.store.service import registrar
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ports import free_port

Stub = pb_grpc.DatasetStoreServiceStub


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("store-service")
    settings = Settings(
        storage=StorageConfig(backend="local", root=root / "data"),
        grpc_port=free_port(),
        metrics_port=free_port(),
        bind_host="127.0.0.1",
    )
    server = Server(
        "store",
        settings,
        registrar(
            DatasetStore(LocalStore(settings.storage.root), import_roots=[tmp_path_factory.getbasetemp()])
        ),
    )
    server.start()
    # One dataset every error case can refer to.
    manifest = write_wine_tabular(root / "wine")
    stub = Stub(channel(f"127.0.0.1:{server.port}"))
    stub.CreateDataset(
        pb.CreateDatasetRequest(dataset_id="wine", manifest_uri=str(manifest), label_column="label"),
        timeout=30,
    )
    yield server
    server.stop(grace=1)


@pytest.fixture(scope="module")
def stub(server: Server) -> Stub:
    return Stub(channel(f"127.0.0.1:{server.port}"))


def _append(stub: Stub, request_id: str) -> pb.AppendAnnotationsResponse:
    annotation = pb.Annotation(example_id="ex-missing", annotator="a", label="class_0")
    request = pb.AppendAnnotationsRequest(
        parent="datasets/wine", request_id=request_id, annotations=[annotation]
    )
    return stub.AppendAnnotations(request, timeout=10)


CASES = {
    "bad dataset id": (
        grpc.StatusCode.INVALID_ARGUMENT,
        "is not a valid id",
        lambda s: s.CreateDataset(
            pb.CreateDatasetRequest(dataset_id="Wine!", manifest_uri="x.csv"), timeout=10
        ),
    ),
    "malformed name": (
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not match 'datasets/{dataset}'",
        lambda s: s.GetDataset(pb.GetDatasetRequest(name="wine"), timeout=10),
    ),
    "manifest outside the import roots": (
        grpc.StatusCode.INVALID_ARGUMENT,
        "'/nope.csv' is not inside the store's import roots",
        lambda s: s.CreateDataset(
            pb.CreateDatasetRequest(dataset_id="w2", manifest_uri="/nope.csv"), timeout=10
        ),
    ),
    "no request id": (grpc.StatusCode.INVALID_ARGUMENT, "request_id is empty", lambda s: _append(s, "")),
    "bad page token": (
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token",
        lambda s: s.ListExamples(
            pb.ListExamplesRequest(parent="datasets/wine", page_token="xyz"), timeout=10
        ),
    ),
    "unknown dataset": (
        grpc.StatusCode.NOT_FOUND,
        "datasets/nope does not exist",
        lambda s: s.GetDataset(pb.GetDatasetRequest(name="datasets/nope"), timeout=10),
    ),
    "unknown snapshot": (
        grpc.StatusCode.NOT_FOUND,
        "snapshots/r7 does not exist",
        lambda s: s.GetSnapshot(pb.GetSnapshotRequest(name="datasets/wine/snapshots/r7"), timeout=10),
    ),
    "unknown example": (
        grpc.StatusCode.NOT_FOUND,
        "1 example id(s) not in datasets/wine: ['ex-missing']",
        lambda s: _append(s, "req-1"),
    ),
    "dataset exists": (
        grpc.StatusCode.ALREADY_EXISTS,
        "datasets/wine already exists",
        lambda s: s.CreateDataset(
            pb.CreateDatasetRequest(dataset_id="wine", manifest_uri="x.csv"), timeout=10
        ),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_errors_have_status_codes(stub: Stub, case: str) -> None:
    code, message, call = CASES[case]
    with pytest.raises(grpc.RpcError) as info:
        call(stub)
    assert info.value.code() == code
    assert message in info.value.details()


def test_lifecycle(server: Server, stub: Stub, tmp_path: Path) -> None:
    # The counters are process-wide (the fixture and other tests add to them): compare deltas.
    appended, ingested = _counters(server)
    manifest = write_digits_images(tmp_path / "digits", size=8, limit=10)
    created = stub.CreateDataset(
        pb.CreateDatasetRequest(
            dataset_id="digits", display_name="Digits", manifest_uri=str(manifest), image_column="image_path",
            label_column="label", test_fraction=0.2, seed=1,
        ),
        timeout=30,
    ).dataset  # fmt: skip
    assert (created.name, created.display_name, created.example_count) == ("datasets/digits", "Digits", 10)
    assert created.test_count == 2 and created.create_time.seconds > 0
    assert created.examples_uri.startswith("file://") and created.examples_uri.endswith(
        "digits/examples.parquet"
    )
    assert stub.GetDataset(pb.GetDatasetRequest(name="datasets/digits"), timeout=10).dataset == created
    listed = stub.ListDatasets(pb.ListDatasetsRequest(), timeout=10).datasets
    assert [d.name for d in listed] == ["datasets/digits", "datasets/wine"]

    pool = stub.ListExamples(
        pb.ListExamplesRequest(parent="datasets/digits", split=pb.SPLIT_POOL, page_size=5), timeout=10
    )
    assert pool.total_size == 8 and len(pool.examples) == 5 and pool.next_page_token
    example = pool.examples[0]
    assert example.split == pb.SPLIT_POOL and example.image_uri.startswith("file://")
    assert Path(example.image_uri.removeprefix("file://")).is_file() and dict(example.features) == {}

    ids = [e.example_id for e in pool.examples]
    request = pb.AppendAnnotationsRequest(
        parent="datasets/digits",
        annotation_set="exp",
        request_id="exp-r0",
        annotations=[pb.Annotation(example_id=i, annotator="oracle", label="3") for i in ids[:3]],
    )
    assert stub.AppendAnnotations(request, timeout=10) == pb.AppendAnnotationsResponse(appended_count=3)
    retry = stub.AppendAnnotations(request, timeout=10)
    assert (retry.appended_count, retry.duplicate) == (0, True)
    logged = stub.ListAnnotations(
        pb.ListAnnotationsRequest(parent="datasets/digits", annotation_set="exp"), timeout=10
    ).annotations
    assert [a.example_id for a in logged] == ids[:3] and all(a.create_time.seconds > 0 for a in logged)

    snapshot = stub.CreateSnapshot(
        pb.CreateSnapshotRequest(parent="datasets/digits", snapshot_id="r1", annotation_set="exp"), timeout=10
    ).snapshot
    assert (snapshot.name, snapshot.labeled_count, snapshot.annotation_count) == (
        "datasets/digits/snapshots/r1",
        3,
        3,
    )
    matrix = np.load(snapshot.labels_multiannotator_uri.removeprefix("file://"))
    assert matrix.shape == (3, 1) and set(matrix[:, 0]) == {3.0}
    assert stub.GetSnapshot(pb.GetSnapshotRequest(name=snapshot.name), timeout=10).snapshot == snapshot
    assert stub.ListSnapshots(pb.ListSnapshotsRequest(parent="datasets/digits"), timeout=10).snapshots == [
        snapshot
    ]

    # 10 examples ingested, 3 annotations appended once (the retry appended nothing).
    assert _counters(server) == (appended + 3, ingested + 10)

    stub.DeleteDataset(pb.DeleteDatasetRequest(name="datasets/digits"), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDataset(pb.GetDatasetRequest(name="datasets/digits"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _counters(server: Server) -> tuple[float, float]:
    """Annotations appended and examples ingested, as the store's /metrics page shows them."""
    port = server.settings.metrics_port_for("store")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return (
        values["labelloop_store_annotations_appended_total"],
        values["labelloop_store_examples_ingested_total"],
    )
