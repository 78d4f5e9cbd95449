"""TrainerService over real gRPC: validation status codes, idempotency, watch, list, cancel, restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import NotFound
from labelloop.core.metrics import TRAINER_REGISTRY as REGISTRY
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore
from labelloop.trainer import operations as ops
from labelloop.trainer.catalog import DatasetInfo, GrpcCatalog, SnapshotInfo, StoreCatalog
from labelloop.trainer.contract import JobState
from labelloop.trainer.executors.local import LocalExecutor
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register
from labelloop.v1 import common_pb2, dataset_store_pb2, dataset_store_pb2_grpc, trainer_pb2, trainer_pb2_grpc

from tests.support.ports import free_port
from tests.trainer.datasets import CLASSES, Fixture, local_trainer_settings, write_digits, write_snapshot

S = common_pb2


@dataclass
class Env:
    store: LocalStore
    fx: Fixture
    trainer: Trainer
    stub: trainer_pb2_grpc.TrainerServiceStub
    settings: Settings


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("trainer-service")
    settings = local_trainer_settings(root)
    store = LocalStore(settings.storage.root)
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30)
    write_snapshot(store, fx.dataset, "single", fx.labels.assign(label="4"))
    write_snapshot(store, fx.dataset, "empty", fx.labels.head(0))
    trainer = Trainer(store, StoreCatalog(store), LocalExecutor(settings, store), poll_seconds=0.2)
    server = Server("trainer", settings, register(trainer))
    server.start()
    yield Env(
        store, fx, trainer, trainer_pb2_grpc.TrainerServiceStub(channel(f"127.0.0.1:{server.port}")), settings
    )
    server.stop(grace=1)
    trainer.close()
    trainer.executor.close()


def train_request(env: Env, **changes: object) -> trainer_pb2.CreateTrainingRunRequest:
    fields: dict = {
        "snapshot": f"datasets/{env.fx.dataset}/snapshots/{env.fx.snapshot}",
        "config": trainer_pb2.TrainerConfig(
            hyperparameters={"model.names": "[numerical_mlp]", "optim.max_epochs": "2"}
        ),
        "output_uri": "experiments/e1/rounds/1/",
    }
    fields.update(changes)
    return trainer_pb2.CreateTrainingRunRequest(**fields)


BAD_TRAINING_RUNS = {
    "bad snapshot name": (
        {"snapshot": "datasets/digits"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not match",
    ),
    "missing snapshot": ({"snapshot": "datasets/digits/snapshots/nope"}, grpc.StatusCode.NOT_FOUND, "nope"),
    "missing dataset": ({"snapshot": "datasets/other/snapshots/s1"}, grpc.StatusCode.NOT_FOUND, "other"),
    "single class": (
        {"snapshot": "datasets/digits/snapshots/single"},
        grpc.StatusCode.FAILED_PRECONDITION,
        "labels of only ['4']: a classifier needs at least 2 classes",
    ),
    "no labels": (
        {"snapshot": "datasets/digits/snapshots/empty"},
        grpc.StatusCode.FAILED_PRECONDITION,
        "no labeled",
    ),
    "bad yaml": (
        {"config": trainer_pb2.TrainerConfig(hyperparameters={"optim.lr": "[1, "})},
        grpc.StatusCode.INVALID_ARGUMENT,
        "optim.lr",
    ),
    "bad checkpoint": (
        {
            "config": trainer_pb2.TrainerConfig(
                checkpoints=[trainer_pb2.Checkpoint(key="k", source="labelloop:x/y")]
            )
        },
        grpc.StatusCode.INVALID_ARGUMENT,
        "built-in checkpoint",
    ),
    "negative gpus": (
        {"config": trainer_pb2.TrainerConfig(num_gpus=-2)},
        grpc.StatusCode.INVALID_ARGUMENT,
        "num_gpus",
    ),
    "output in another bucket": (
        {"output_uri": "s3://elsewhere/x/"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "output_uri",
    ),
    "output outside the store": (
        {"output_uri": "file:///tmp/x/"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "output_uri",
    ),
    "output over datasets": (
        {"output_uri": "datasets/digits/"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "output_uri",
    ),
}


def stored(store: LocalStore) -> dict[str, bytes]:
    """Every object in the store with its content: what a rejected request must leave as it was."""
    return {key: store.get_bytes(key) for key in store.list("")}


@pytest.mark.parametrize("case", BAD_TRAINING_RUNS, ids=list(BAD_TRAINING_RUNS))
def test_create_training_run_rejects(env: Env, case: str) -> None:
    changes, code, text = BAD_TRAINING_RUNS[case]
    before = stored(env.store)
    with pytest.raises(grpc.RpcError) as info:
        env.stub.CreateTrainingRun(train_request(env, **changes), timeout=10)
    assert info.value.code() == code
    assert text in info.value.details()
    assert stored(env.store) == before  # no operation record, no spec, no output folder
    assert env.trainer.list()[0] == []


@pytest.mark.parametrize(
    ("call", "request_", "code"),
    [
        ("GetOperation", trainer_pb2.GetOperationRequest(name="operations/nope"), grpc.StatusCode.NOT_FOUND),
        ("GetOperation", trainer_pb2.GetOperationRequest(name="nope"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            "CancelOperation",
            trainer_pb2.CancelOperationRequest(name="operations/x"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            "ListOperations",
            trainer_pb2.ListOperationsRequest(filter="experiment"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "ListOperations",
            trainer_pb2.ListOperationsRequest(page_token="zz"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "CreatePredictionRun",
            trainer_pb2.CreatePredictionRunRequest(dataset="datasets/digits", model_uri="runs/none/model/"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            "CreatePredictionRun",
            trainer_pb2.CreatePredictionRunRequest(dataset="digits", model_uri="x/"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_other_calls_reject(env: Env, call: str, request_: object, code: grpc.StatusCode) -> None:
    before = stored(env.store)
    with pytest.raises(grpc.RpcError) as info:
        getattr(env.stub, call)(request_, timeout=10)
    assert info.value.code() == code
    assert stored(env.store) == before
    assert env.trainer.list()[0] == []


def watch_until_done(env: Env, name: str) -> list[trainer_pb2.Operation]:
    seen = [
        r.operation
        for r in env.stub.WatchOperation(trainer_pb2.WatchOperationRequest(name=name), timeout=300)
    ]
    assert seen[-1].state in (
        S.OPERATION_STATE_SUCCEEDED,
        S.OPERATION_STATE_FAILED,
        S.OPERATION_STATE_CANCELLED,
    )
    return seen


def runs_total(state: str) -> float:
    return REGISTRY.get_sample_value("labelloop_trainer_runs_total", {"state": state}) or 0.0


@pytest.mark.slow
def test_train_predict_list_cancel_and_restart(env: Env) -> None:
    succeeded_before = runs_total("succeeded")
    labels = {"experiment": "e1", "round": "1"}
    first = env.stub.CreateTrainingRun(
        train_request(env, request_id="e1-r1", labels=labels), timeout=10
    ).operation
    retry = env.stub.CreateTrainingRun(
        train_request(env, request_id="e1-r1", labels=labels), timeout=10
    ).operation
    assert retry.name == first.name and first.state in (S.OPERATION_STATE_PENDING, S.OPERATION_STATE_RUNNING)

    seen = watch_until_done(env, first.name)
    done = seen[-1]
    assert done.state == S.OPERATION_STATE_SUCCEEDED, done.error.message
    progress = [op.progress for op in seen]
    assert progress == sorted(progress) and len(seen) >= 3 and done.progress == 1.0
    result = done.result
    assert list(result.classes) == [str(i) for i in range(10)]
    assert list(result.pool_probabilities.shape) == [40, 10] and result.pool_probabilities.dtype == "float32"
    pool = env.store.get_array(env.store.key_of(result.pool_probabilities.uri))
    assert pool.shape == (40, 10) and np.allclose(pool.sum(axis=1), 1, atol=1e-4)
    assert len(env.store.get_json(env.store.key_of(result.test_probabilities.example_ids_uri))) == 10
    assert result.model_uri.endswith("experiments/e1/rounds/1/model/") and result.fit_seconds > 0
    assert runs_total("succeeded") == succeeded_before + 1

    # Prediction with the stored model.
    predicted = env.stub.CreatePredictionRun(
        trainer_pb2.CreatePredictionRunRequest(
            dataset="datasets/digits",
            model_uri=result.model_uri,
            output_uri="predictions/p1/",
            labels={"experiment": "e2"},
        ),
        timeout=10,
    ).operation
    final = watch_until_done(env, predicted.name)[-1]
    assert final.state == S.OPERATION_STATE_SUCCEEDED, final.error.message
    again = env.store.get_array(env.store.key_of(final.result.pool_probabilities.uri))
    np.testing.assert_allclose(again, pool, atol=1e-5)

    # Listing: label filters and paging.
    listed = env.stub.ListOperations(
        trainer_pb2.ListOperationsRequest(filter="experiment=e1 AND round=1"), timeout=10
    )
    assert [op.name for op in listed.operations] == [first.name]
    page1 = env.stub.ListOperations(trainer_pb2.ListOperationsRequest(page_size=1), timeout=10)
    page2 = env.stub.ListOperations(
        trainer_pb2.ListOperationsRequest(page_size=1, page_token=page1.next_page_token), timeout=10
    )
    assert [op.name for op in [*page1.operations, *page2.operations]] == [first.name, predicted.name]
    assert not page2.next_page_token

    # Cancel a long run mid-fit: CANCELLED, no result.json.
    long_config = trainer_pb2.TrainerConfig(
        hyperparameters={
            "model.names": "[numerical_mlp]",
            "optim.max_epochs": "100000",
            "optim.patience": "100000",  # no early stop: it must still be fitting when cancelled
            "env.batch_size": "2",
        }
    )
    long = env.stub.CreateTrainingRun(
        train_request(env, config=long_config, output_uri="experiments/e1/rounds/2/"), timeout=10
    ).operation
    deadline = time.monotonic() + 120
    while (
        "fitting"
        not in env.stub.GetOperation(
            trainer_pb2.GetOperationRequest(name=long.name)
        ).operation.progress_message
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    cancelled = env.stub.CancelOperation(
        trainer_pb2.CancelOperationRequest(name=long.name), timeout=60
    ).operation
    assert cancelled.state == S.OPERATION_STATE_CANCELLED
    assert not env.store.exists("experiments/e1/rounds/2/result.json")

    # A restarted trainer answers for finished runs and fails the ones that were in flight.
    stale = ops.OperationRecord(id="op-stale", kind="train", request_id="", state=JobState.RUNNING)
    ops.save(env.store, stale)
    restarted = Trainer(env.store, StoreCatalog(env.store), LocalExecutor(env.settings, env.store))
    try:
        assert restarted.get(first.name).state == JobState.SUCCEEDED
        assert restarted.get(long.name).state == JobState.CANCELLED
        assert (
            restarted.create_training_run("datasets/digits/snapshots/s1", {}, request_id="e1-r1").name
            == first.name
        )
        gone = restarted.get("operations/op-stale")
        assert gone.state == JobState.FAILED and "restarted" in gone.error_message
    finally:
        restarted.close()
        restarted.executor.close()


class MovedDatasetStore(dataset_store_pb2_grpc.DatasetStoreServiceServicer):
    """A dataset store service whose answers differ from the metadata files in the object store (as
    if the dataset had moved): a catalog that asked it returns these; one that read the files does not.
    """

    def __init__(self, store: LocalStore):
        self.store = store

    def GetDataset(
        self, request: dataset_store_pb2.GetDatasetRequest, context: grpc.ServicerContext
    ) -> dataset_store_pb2.GetDatasetResponse:
        if request.name != "datasets/digits":
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} does not exist")
        dataset = dataset_store_pb2.Dataset(
            name=request.name,
            classes=["cat", "dog"],
            examples_uri=self.store.uri("moved/examples.parquet"),
            image_column="photo",
            feature_columns=["whiskers"],
            label_column="species",
        )
        return dataset_store_pb2.GetDatasetResponse(dataset=dataset)

    def GetSnapshot(
        self, request: dataset_store_pb2.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> dataset_store_pb2.GetSnapshotResponse:
        if request.name != "datasets/digits/snapshots/s1":
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} does not exist")
        labels_uri = self.store.uri("moved/labels.parquet")
        return dataset_store_pb2.GetSnapshotResponse(
            snapshot=dataset_store_pb2.Snapshot(name=request.name, labels_uri=labels_uri)
        )


def test_grpc_catalog_asks_the_store_and_falls_back(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=10, n_test=2, n_labeled=4)
    settings = Settings(grpc_port=free_port(), metrics_port=free_port())

    def add(server: grpc.Server) -> list[str]:
        dataset_store_pb2_grpc.add_DatasetStoreServiceServicer_to_server(MovedDatasetStore(store), server)
        return ["labelloop.v1.DatasetStoreService"]

    server = Server("store", settings, add)
    server.start()
    try:
        catalog = GrpcCatalog(f"127.0.0.1:{server.port}", store)
        assert catalog.dataset("datasets/digits") == DatasetInfo(
            name="datasets/digits",
            classes=["cat", "dog"],
            examples_key="moved/examples.parquet",
            image_column="photo",
            feature_columns=["whiskers"],
            label_column="species",
        )
        assert catalog.snapshot("datasets/digits/snapshots/s1") == SnapshotInfo(
            "datasets/digits/snapshots/s1", "moved/labels.parquet"
        )
        with pytest.raises(NotFound, match="does not exist"):
            catalog.snapshot("datasets/digits/snapshots/nope")
        # A training run asks both at once and gets the same answers.
        both = catalog.dataset_and_snapshot("datasets/digits/snapshots/s1")
        assert both == (catalog.dataset("datasets/digits"), catalog.snapshot("datasets/digits/snapshots/s1"))
        assert both[1].labels_key == "moved/labels.parquet"
        with pytest.raises(NotFound, match="does not exist"):
            catalog.dataset_and_snapshot("datasets/digits/snapshots/nope")
    finally:
        server.stop(grace=0)
    offline = GrpcCatalog(f"127.0.0.1:{free_port()}", store, timeout=2)  # nothing listens: read the files
    dataset = offline.dataset("datasets/digits")
    assert (dataset.examples_key, dataset.classes, dataset.label_column) == (
        fx.examples_key,
        CLASSES,
        "digit",
    )
    assert offline.snapshot("datasets/digits/snapshots/s1").labels_key == fx.labels_key
    assert offline.dataset_and_snapshot("datasets/digits/snapshots/s1") == (
        dataset,
        offline.snapshot("datasets/digits/snapshots/s1"),
    )
