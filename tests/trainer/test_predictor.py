"""A round's model folder predicts new data on its own: in a fresh process, without the trainer's cache.

Models are trained by real jobs into a real S3 server (SeaweedFS); the trainer's cache folder is then
deleted, the folder is pulled with `labelloop models pull` and new rows are predicted by `labelloop
predict` in another process whose cache is an empty folder. Its predictions must be the job's own test
predictions (same labels, same accuracy). The trainer's prediction RPC of a manifest is checked the
same way, and its bad requests for the status and message they get.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.server import Server, channel
from labelloop.core.storage import LocalStore, ObjectStore, S3Store
from labelloop.trainer import embeddings, hparams, predictor
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.executors.local import LocalExecutor
from labelloop.trainer.job import run_job
from labelloop.trainer.runs import Trainer
from labelloop.trainer.service import register
from labelloop.v1 import common_pb2, trainer_pb2, trainer_pb2_grpc

from tests.conftest import s3_config
from tests.support.ports import free_port
from tests.support.seaweedfs import S3Server
from tests.trainer.datasets import CLASSES, Fixture, write_digits

MOBILENET = [{"key": hparams.TIMM_CHECKPOINT_KEY, "source": "labelloop:imagenet/mobilenetv2_100"}]
PIXELS = [{"key": embeddings.IMAGE_CHECKPOINT_KEY, "source": "labelloop:pixels"}]


def quiet(progress: float, message: str) -> None:
    pass


def s3_env(config: StorageConfig) -> dict[str, str]:
    return {
        "LABELLOOP_STORAGE_BACKEND": "s3",
        "LABELLOOP_S3_ENDPOINT": config.endpoint,
        "LABELLOOP_S3_BUCKET": config.bucket,
        "LABELLOOP_S3_ACCESS_KEY": config.access_key,
        "LABELLOOP_S3_SECRET_KEY": config.secret_key,
    }


def fresh_process(args: list[str], tmp: Path, env: dict[str, str] | None = None) -> str:
    """`labelloop ARGS` in a new interpreter whose caches (LABELLOOP_CACHE_DIR, HOME) are empty folders."""
    home, cache = tmp / "fresh-home", tmp / "fresh-cache"
    home.mkdir(exist_ok=True)
    cache.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABELLOOP_")}
    full_env = {**clean, "HOME": str(home), "LABELLOOP_CACHE_DIR": str(cache), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "labelloop.cli.main", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_images(store: ObjectStore, fx: Fixture, folder: Path, image_column: str = "image") -> Path:
    """The test split as a CSV of local image files (paths relative to the CSV), with the truth."""
    test = fx.examples[fx.examples["split"] == "test"]
    (folder / "images").mkdir(parents=True)
    paths = []
    for key in test["image"]:
        path = folder / "images" / Path(key).name
        store.get_file(key, path)
        paths.append(f"images/{path.name}")
    rows = pd.DataFrame({"example_id": test["example_id"], image_column: paths, "digit": test["digit"]})
    rows.to_csv(folder / "new.csv", index=False)
    return folder / "new.csv"


test_images.__test__ = False  # type: ignore[attr-defined] - a helper, not a test


def job_test_predictions(store: ObjectStore, result: dict[str, Any]) -> pd.DataFrame:
    """The job's own test predictions: example_id, predicted label and probabilities."""
    proba = store.get_array(result["test_probabilities_key"])
    ids = store.get_json(result["test_example_ids_key"])
    return pd.DataFrame({"example_id": ids, "label": np.asarray(CLASSES)[proba.argmax(axis=1)]}).assign(
        proba=list(proba)
    )


def assert_same_as_the_job(
    predictions: pd.DataFrame, store: ObjectStore, result: dict[str, Any], fx: Fixture
):
    """Same labels and probabilities as the job's test predictions, hence the same accuracy."""
    expected = job_test_predictions(store, result)
    got = predictions.assign(example_id=predictions["example_id"].astype(str)).set_index("example_id")
    got = got.loc[expected["example_id"]]
    assert got["predicted_label"].astype(str).tolist() == expected["label"].tolist()
    probabilities = got[[f"{predictor.PROBABILITY_PREFIX}{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities, np.stack(expected["proba"].to_list()), atol=1e-4)
    truth = fx.examples.set_index("example_id").loc[expected["example_id"], "digit"].to_numpy()
    accuracy = float((got["predicted_label"].astype(str).to_numpy() == truth).mean())
    assert accuracy == pytest.approx(result["test_accuracy"])
    return accuracy


@pytest.fixture
def s3(s3_server: S3Server) -> tuple[S3Store, StorageConfig]:
    config = s3_config(s3_server)
    return S3Store(config), config


def train_pull_and_predict(
    s3: tuple[S3Store, StorageConfig], tmp_path: Path, config: dict[str, Any], **digits: Any
) -> tuple[dict[str, Any], float, Path]:
    """Trains with a cache that is deleted afterwards, pulls the model folder, predicts the test images."""
    store, storage = s3
    fx = write_digits(store, images=True, **digits)
    trainer_cache = tmp_path / "trainer-cache"
    result = run_job(
        fx.spec("m1", "runs/m1/", config, dataset="datasets/digits"), store, quiet, trainer_cache
    )
    shutil.rmtree(trainer_cache)  # nothing the trainer built may be needed any more

    model = tmp_path / "pulled"
    fresh_process(
        ["models", "pull", store.uri(result["model_key"]), "--output", str(model)], tmp_path, s3_env(storage)
    )
    assert (model / predictor.CARD_FILE).exists()
    new = test_images(store, fx, tmp_path / "new", image_column="picture")
    out = tmp_path / "predictions.csv"
    args = ["predict", "--model", str(model), "--input", str(new), "--image-column", "picture"]
    printed = fresh_process([*args, "--id-column", "example_id", "--output", str(out)], tmp_path)  # no store
    assert f"{len(pd.read_csv(new))} rows predicted" in printed
    accuracy = assert_same_as_the_job(pd.read_csv(out, dtype={"example_id": str}), store, result, fx)
    return result, accuracy, model


@pytest.mark.slow
def test_fine_tuned_image_model_predicts_in_a_fresh_process(
    s3: tuple[S3Store, StorageConfig], tmp_path: Path
) -> None:
    config = {
        "hyperparameters": {
            "optim.max_epochs": "4",
            "optim.lr": "0.003",
            "model.timm_image.image_size": "32",
        },
        "checkpoints": MOBILENET,
    }
    result, accuracy, model = train_pull_and_predict(s3, tmp_path, config, n_pool=60, n_test=30, n_labeled=60)
    assert result["mode"] == hparams.FINE_TUNE and (model / "model.ckpt").exists()
    card = predictor.ModelCard.from_dict(pd.read_json(model / predictor.CARD_FILE, typ="series").to_dict())
    assert card.kind == predictor.AUTOGLUON and card.classes == CLASSES and card.image_column == "image"
    print(f"\nfine-tuned MobileNetV2: test accuracy {accuracy:.3f} in the job and in a fresh process")

    # A folder saved before model cards existed: AutoGluon's own files say what it reads.
    (model / predictor.CARD_FILE).unlink()
    out = tmp_path / "legacy.csv"
    new = tmp_path / "new" / "new.csv"
    args = ["predict", "--model", str(model), "--input", str(new), "--image-column", "picture"]
    fresh_process([*args, "--id-column", "example_id", "--output", str(out)], tmp_path)
    before = pd.read_csv(tmp_path / "predictions.csv", dtype={"example_id": str})
    legacy = pd.read_csv(out, dtype={"example_id": str})
    assert legacy["predicted_label"].tolist() == before["predicted_label"].tolist()


def test_linear_probe_on_mobilenet_predicts_in_a_fresh_process(
    s3: tuple[S3Store, StorageConfig], tmp_path: Path
) -> None:
    config = {"mode": hparams.LINEAR_PROBE, "checkpoints": MOBILENET}
    result, accuracy, model = train_pull_and_predict(s3, tmp_path, config, n_pool=80, n_test=40, n_labeled=50)
    assert result["mode"] == hparams.LINEAR_PROBE and accuracy > 0.3  # chance is 0.1
    # The frozen network travels with the model: the fresh process had no cache to build it in.
    assert (model / "backbone" / "image" / "pytorch_model.bin").exists()
    assert not any((tmp_path / "fresh-cache").rglob("pytorch_model.bin"))
    print(f"\nlinear probe on MobileNetV2: test accuracy {accuracy:.3f} in the job and in a fresh process")


def test_tabular_probe_standardizes_new_rows_like_the_dataset(tmp_path: Path) -> None:
    """Numeric columns are standardized with the dataset's statistics, not the new rows' own."""
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=200, n_test=60, n_labeled=40)
    result = run_job(
        fx.spec("t1", "runs/t1/", {"mode": hparams.LINEAR_PROBE}, dataset="datasets/digits"),
        store,
        quiet,
        tmp_path / "cache",
    )
    loaded = predictor.load_predictor(store.path(result["model_key"]), tmp_path / "empty-cache")
    test = fx.examples[fx.examples["split"] == "test"]
    table = loaded.predict(test, test["example_id"].tolist())
    assert_same_as_the_job(table, store, result, fx)
    one = loaded.predict(test.head(1), ["x"])  # a single row: its own statistics would be meaningless
    np.testing.assert_allclose(
        one.filter(like="prob_").to_numpy(), table.filter(like="prob_").head(1).to_numpy()
    )
    with pytest.raises(Exception, match=r"lacks the column\(s\) \['px0'\]"):
        loaded.predict(test.drop(columns=["px0"]))


# The prediction RPC ------------------------------------------------------------------------------------


@dataclass
class Service:
    store: S3Store
    storage: StorageConfig
    stub: trainer_pb2_grpc.TrainerServiceStub
    address: str
    fx: Fixture
    trained: trainer_pb2.Operation


def watch(stub: trainer_pb2_grpc.TrainerServiceStub, name: str) -> trainer_pb2.Operation:
    *_, last = stub.WatchOperation(trainer_pb2.WatchOperationRequest(name=name), timeout=300)
    return last.operation


@pytest.fixture(scope="module")
def service(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A trainer service over S3 with a linear probe on pixels trained through CreateTrainingRun."""
    tmp_path = tmp_path_factory.mktemp("predict-service")
    storage = s3_config(s3_server)
    store = S3Store(storage)
    settings = Settings(
        storage=storage, cache_dir=tmp_path / "cache", grpc_port=free_port(), metrics_port=free_port()
    )
    trainer = Trainer(store, StoreCatalog(store), LocalExecutor(settings, store), poll_seconds=0.2)
    server = Server("trainer", settings, register(trainer))
    server.start()
    address = f"127.0.0.1:{server.port}"
    stub = trainer_pb2_grpc.TrainerServiceStub(channel(address))
    fx = write_digits(store, n_pool=80, n_test=40, n_labeled=50, images=True)
    config = trainer_pb2.TrainerConfig(
        mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE,
        checkpoints=[trainer_pb2.Checkpoint(key=c["key"], source=c["source"]) for c in PIXELS],
    )
    request = trainer_pb2.CreateTrainingRunRequest(
        snapshot="datasets/digits/snapshots/s1", config=config, output_uri="experiments/e1/rounds/1/"
    )
    trained = watch(stub, stub.CreateTrainingRun(request, timeout=30).operation.name)
    assert trained.state == common_pb2.OPERATION_STATE_SUCCEEDED, trained.error.message
    try:
        yield Service(store, storage, stub, address, fx, trained)
    finally:
        server.stop(grace=1)
        trainer.close()
        trainer.executor.close()


def manifest(service: Service, key: str, **renamed: str) -> str:
    test = service.fx.examples[service.fx.examples["split"] == "test"]
    table = test[["example_id", "image", "digit"]].rename(columns=renamed)
    content = (
        table.to_parquet(index=False) if key.endswith(".parquet") else table.to_csv(index=False).encode()
    )
    service.store.put_bytes(key, content)
    return service.store.uri(key)


def job_result(service: Service) -> dict[str, Any]:
    """The training job's result.json: the keys the job wrote."""
    return service.store.get_json("experiments/e1/rounds/1/result.json")


def test_prediction_rpc_of_a_manifest_and_the_cli_through_it(service: Service, tmp_path: Path) -> None:
    request = trainer_pb2.CreatePredictionRunRequest(
        request_id="new-1",
        manifest_uri=manifest(service, "incoming/batch.parquet", image="picture"),
        model_uri=service.trained.result.model_uri,
        image_column="picture",
        id_column="example_id",
        output_uri="predictions/batch-1/",
    )
    first = service.stub.CreatePredictionRun(request, timeout=30).operation
    assert service.stub.CreatePredictionRun(request, timeout=30).operation.name == first.name  # idempotent
    done = watch(service.stub, first.name)
    assert done.state == common_pb2.OPERATION_STATE_SUCCEEDED, done.error.message
    uri = done.result.predictions_uri
    assert uri.endswith("predictions/batch-1/predictions.parquet") and done.result.predicted_count == 40
    table = pd.read_parquet(io.BytesIO(service.store.get_bytes(service.store.key_of(uri))))
    assert table.columns[:4].tolist() == ["row", "example_id", "predicted_label", "score"]
    assert_same_as_the_job(table, service.store, job_result(service), service.fx)

    # The CLI through the same RPC: a local CSV is uploaded, the table comes back as CSV.
    local = tmp_path / "batch.csv"
    test = service.fx.examples[service.fx.examples["split"] == "test"]
    test[["example_id", "image"]].to_csv(local, index=False)
    out = tmp_path / "out.csv"
    remote = ["predict", "--on-trainer", "--trainer", service.address]
    files = ["--input", str(local), "--id-column", "example_id", "--output", str(out)]
    fresh_process(
        [*remote, "--model", service.trained.result.model_uri, *files],
        tmp_path,
        s3_env(service.storage),
    )
    assert_same_as_the_job(
        pd.read_csv(out, dtype={"example_id": str}), service.store, job_result(service), service.fx
    )


BAD_PREDICTIONS: dict[str, tuple[dict[str, str], grpc.StatusCode, str]] = {
    "neither dataset nor manifest": ({}, grpc.StatusCode.INVALID_ARGUMENT, "exactly one of dataset"),
    "not a table": ({"manifest_uri": "incoming/x.txt"}, grpc.StatusCode.INVALID_ARGUMENT, ".csv or .parquet"),
    "missing manifest": ({"manifest_uri": "incoming/none.csv"}, grpc.StatusCode.NOT_FOUND, "none.csv"),
    "another bucket": (
        {"manifest_uri": "s3://elsewhere/x.csv"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "manifest_uri",
    ),
    "image column not named": ({"manifest_uri": "m:picture"}, grpc.StatusCode.INVALID_ARGUMENT, "['image']"),
    "no such id column": (
        {"manifest_uri": "m:", "id_column": "uid"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "id_column 'uid'",
    ),
    "columns with a dataset": (
        {"dataset": "datasets/digits", "image_column": "picture"},
        grpc.StatusCode.INVALID_ARGUMENT,
        "go with manifest_uri",
    ),
    "no model there": (
        {"manifest_uri": "m:", "model_uri": "experiments/e1/rounds/9/model/"},
        grpc.StatusCode.NOT_FOUND,
        "no saved model",
    ),
}


@pytest.mark.parametrize("case", BAD_PREDICTIONS, ids=list(BAD_PREDICTIONS))
def test_bad_prediction_requests(service: Service, case: str) -> None:
    fields, code, text = BAD_PREDICTIONS[case]
    fields = {"model_uri": service.trained.result.model_uri, **fields}
    if fields.get("manifest_uri", "").startswith("m:"):  # a real manifest, its image column renamed
        renamed = fields["manifest_uri"][2:]
        fields["manifest_uri"] = manifest(
            service, "incoming/bad.csv", **({"image": renamed} if renamed else {})
        )
    with pytest.raises(grpc.RpcError) as info:
        service.stub.CreatePredictionRun(trainer_pb2.CreatePredictionRunRequest(**fields), timeout=30)
    assert info.value.code() == code
    assert text in info.value.details()


def test_cli_says_what_to_fix_and_documents_every_flag(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from labelloop.cli.main import build_parser, main

    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=60, n_test=20, n_labeled=30)
    result = run_job(
        fx.spec("t1", "runs/t1/", {"mode": hparams.LINEAR_PROBE}), store, quiet, tmp_path / "cache"
    )
    model = str(store.path(result["model_key"]))
    test = fx.examples[fx.examples["split"] == "test"]
    test.drop(columns=["px3"]).to_csv(tmp_path / "short.csv", index=False)
    test.to_csv(tmp_path / "new.csv", index=False)
    cases = {
        "short.csv": ("preds.csv", "lacks the column(s) ['px3']"),
        "none.csv": ("preds.csv", "no such file"),
        "new.csv": ("preds.txt", "must be a .csv or .parquet file"),
    }
    for given, (output, message) in cases.items():
        args = [
            "predict",
            "--model",
            model,
            "--input",
            str(tmp_path / given),
            "--output",
            str(tmp_path / output),
        ]
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert (
        main(["predict", "--model", str(tmp_path), "--input", str(tmp_path / "new.csv"), "--output", "x.csv"])
        == 2
    )
    assert "not a LabelLoop model folder" in capsys.readouterr().err
    out = tmp_path / "preds.parquet"
    assert (
        main(["predict", "--model", model, "--input", str(tmp_path / "new.csv"), "--output", str(out)]) == 0
    )
    assert len(pd.read_parquet(out)) == len(test)

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices  # type: ignore[union-attr]
    pull = next(a for a in commands["models"]._actions if a.dest != "help" and a.choices).choices["pull"]
    for parser in (commands["predict"], pull):
        undocumented = [a.dest for a in parser._actions if not a.help]
        assert not undocumented
