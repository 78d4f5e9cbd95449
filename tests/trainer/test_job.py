"""Real AutoGluon jobs on tiny data: probabilities, class alignment, result.json, reloading a model."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.trainer import data, hparams
from labelloop.trainer.contract import JobKind
from labelloop.trainer.job import aligned_probabilities, main, run_job

from tests.trainer.datasets import CLASSES, Fixture, write_digits, write_snapshot

TABULAR = {
    "hyperparameters": {"model.names": "[numerical_mlp]", "optim.max_epochs": "10", "optim.lr": "0.01"}
}
SEEN = [c for c in CLASSES if c != "9"]  # class 9 is never labeled: its column must be 0


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))


def check_outputs(store: ObjectStore, result: dict[str, Any], fx: Fixture) -> tuple[np.ndarray, np.ndarray]:
    pool = store.get_array(result["pool_probabilities_key"])
    test = store.get_array(result["test_probabilities_key"])
    ids = fx.examples.groupby("split")["example_id"].apply(list)
    assert store.get_json(result["pool_example_ids_key"]) == ids["pool"]
    assert store.get_json(result["test_example_ids_key"]) == ids["test"]
    for probs, n in ((pool, len(ids["pool"])), (test, len(ids["test"]))):
        assert probs.dtype == np.float32 and probs.shape == (n, len(CLASSES))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert result["classes"] == CLASSES
    assert (result["n_pool"], result["n_test"]) == (len(ids["pool"]), len(ids["test"]))
    prefix = result["pool_probabilities_key"].rsplit("/", 1)[0]
    assert store.get_json(f"{prefix}/result.json") == result  # written last, equal to what run_job returned
    return pool, test


@pytest.fixture(scope="module")
def tabular_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[LocalStore, Fixture, dict, Progress, float]:
    root = tmp_path_factory.mktemp("tabular")
    store = LocalStore(root / "store")
    fx = write_digits(store, n_pool=80, n_test=40, n_labeled=60, labeled_classes=SEEN)
    progress = Progress()
    start = time.perf_counter()
    result = run_job(fx.spec("t1", "runs/t1/", TABULAR), store, progress, cache_dir=root / "cache")
    return store, fx, result, progress, time.perf_counter() - start


@pytest.mark.slow
def test_tabular_train_aligns_classes_and_writes_result(tabular_run: tuple) -> None:
    store, fx, result, progress, seconds = tabular_run
    pool, test = check_outputs(store, result, fx)
    assert np.all(pool[:, CLASSES.index("9")] == 0) and np.all(test[:, CLASSES.index("9")] == 0)
    assert np.all(pool[:, :9].max(axis=1) > 0)
    assert result["test_accuracy"] > 0.5, result  # well above chance (0.1) after 10 epochs on 60 labels
    assert result["fit_seconds"] > 0 and result["predict_seconds"] > 0
    assert any(store.list(result["model_key"]))
    fractions = [p for p, _ in progress.calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert any("predicted" in m for _, m in progress.calls)
    print(f"\ntabular train job: {seconds:.1f} s, fit {result['fit_seconds']:.1f} s")


@pytest.mark.slow
def test_predict_job_reloads_the_saved_model(tabular_run: tuple, tmp_path: Path) -> None:
    store, fx, trained, _, _ = tabular_run
    spec = fx.spec("p1", "runs/p1/", kind=JobKind.PREDICT, model_key=trained["model_key"], labels_key="")
    result = run_job(spec, store, Progress(), cache_dir=tmp_path)
    assert result["model_key"] == trained["model_key"] and result["fit_seconds"] == 0
    pool, _ = check_outputs(store, result, fx)
    np.testing.assert_allclose(pool, store.get_array(trained["pool_probabilities_key"]), atol=1e-5)
    assert result["test_accuracy"] == pytest.approx(trained["test_accuracy"])


@pytest.mark.slow
def test_two_classes_fit_as_binary(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=60, n_test=10, n_labeled=20, labeled_classes=["3", "7"])
    result = run_job(fx.spec("b1", "runs/b1/", TABULAR), store, Progress(), cache_dir=tmp_path)
    pool = store.get_array(result["pool_probabilities_key"])
    others = [i for i, c in enumerate(CLASSES) if c not in ("3", "7")]
    assert np.all(pool[:, others] == 0)
    np.testing.assert_allclose(pool[:, 3] + pool[:, 7], 1.0, atol=1e-4)


def test_single_class_snapshot_fails_with_a_clear_message(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=30, n_test=5, n_labeled=5, labeled_classes=["4"])
    with pytest.raises(FailedPrecondition, match="at least 2 classes"):
        run_job(fx.spec("s1", "runs/s1/", TABULAR), store, Progress(), cache_dir=tmp_path)
    assert not store.exists("runs/s1/result.json")


def test_labels_outside_the_classes_fail(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=30, n_test=5, n_labeled=6)
    write_snapshot(store, fx.dataset, fx.snapshot, fx.labels.assign(label="cat"))
    with pytest.raises(FailedPrecondition, match="not among the dataset classes"):
        run_job(fx.spec("s2", "runs/s2/", TABULAR), store, Progress(), cache_dir=tmp_path)


@pytest.mark.slow
def test_image_job_with_random_resnet_and_reload_without_checkpoint_dir(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30, images=True)
    config = {
        "hyperparameters": {"optim.max_epochs": "1", "model.timm_image.image_size": "32"},
        "checkpoints": [{"key": hparams.TIMM_CHECKPOINT_KEY, "source": "labelloop:random/resnet18"}],
    }
    start = time.perf_counter()
    result = run_job(fx.spec("i1", "runs/i1/", config), store, Progress(), cache_dir=tmp_path / "cache")
    seconds = time.perf_counter() - start
    check_outputs(store, result, fx)
    fit = result["fit_seconds"]
    print(f"\nimage train job (resnet18, 30 labels, 1 epoch, 32 px): {seconds:.1f} s, fit {fit:.1f} s")
    # The predictor must reload from the store alone: the built checkpoint directory is gone.
    shutil.rmtree(tmp_path / "cache")
    spec = fx.spec("i2", "runs/i2/", kind=JobKind.PREDICT, model_key=result["model_key"], labels_key="")
    again = run_job(spec, store, Progress(), cache_dir=tmp_path / "cache2")
    np.testing.assert_allclose(
        store.get_array(again["test_probabilities_key"]),
        store.get_array(result["test_probabilities_key"]),
        atol=1e-4,
    )


def test_aligned_probabilities_reorders_and_fills() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    out = aligned_probabilities(proba, ["b", "a"], ["a", "b", "c"])
    np.testing.assert_allclose(out, [[0.8, 0.2, 0.0], [0.4, 0.6, 0.0]])
    with pytest.raises(FailedPrecondition, match="does not have"):
        aligned_probabilities(proba, ["a", "z"], ["a", "b"])


def test_cpu_defaults_keep_batch_sizes_equal(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    args = hparams.fit_args(
        {"hyperparameters": {"env.batch_size": "8", "model.names": "[numerical_mlp]"}, "seed": 3},
        n_labeled=100, image_column="", store=store, cache_dir=tmp_path,
    )  # fmt: skip
    hp = args.hyperparameters
    assert hp["env.batch_size"] == hp["env.per_gpu_batch_size"] == 8
    assert hp["env.num_gpus"] == 0 and hp["env.num_workers"] == 0 and args.seed == 3
    assert "model.hf_text.text_trivial_aug_maxscale" not in hp  # AutoGluon rejects keys of unused models
    default = hparams.fit_args({}, n_labeled=2000, image_column="img", store=store, cache_dir=tmp_path)
    assert default.hyperparameters["env.per_gpu_batch_size"] == 64
    assert default.column_types == {"img": "image_path"}
    assert Path(default.hyperparameters[hparams.TIMM_CHECKPOINT_KEY]).name == "mobilenetv2_100"
    assert default.hyperparameters["model.hf_text.text_trivial_aug_maxscale"] == 0.0


@pytest.mark.slow
def test_pod_entry_point_writes_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=40, n_test=10, n_labeled=30)
    spec = fx.spec("k1", "runs/k1/", TABULAR)
    store.put_bytes("specs/k1.json", spec.to_json().encode())
    monkeypatch.setenv("LABELLOOP_STORAGE_ROOT", str(store.root))
    monkeypatch.setenv("LABELLOOP_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--spec-json", "specs/k1.json"]) == 0
    status = store.get_json("runs/k1/status.json")
    assert status["state"] == "succeeded" and status["progress"] == 1.0
    assert json.loads(store.get_bytes("runs/k1/result.json"))["n_pool"] == 40


def test_image_keys_become_local_files(object_store: ObjectStore, tmp_path: Path) -> None:
    fx = write_digits(object_store, n_pool=6, n_test=2, n_labeled=4, images=True)
    keys = fx.examples["image"]
    for _ in range(2):  # the second pass reads the download cache
        paths = data.local_image_paths(object_store, keys, tmp_path / "cache")
        assert [Path(p).read_bytes() for p in paths] == [object_store.get_bytes(k) for k in keys]
    if isinstance(object_store, LocalStore):
        assert not (tmp_path / "cache").exists()  # a local store's files are used in place
