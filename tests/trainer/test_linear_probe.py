"""TRAINING_MODE_LINEAR_PROBE, pool embeddings and embedding runs, on real (small) data.

The probe's probabilities are checked against scikit-learn run independently on the cached
embeddings, so a probe that trains on the wrong rows, standardizes differently or misaligns classes
fails here; the cache is checked by its object staying untouched on the second run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labelloop.core.errors import FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.storage import LocalStore
from labelloop.trainer import embeddings, hparams, probe
from labelloop.trainer import operations as ops
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.contract import JobKind, JobSpec, JobState, JobStatus
from labelloop.trainer.executors.base import Executor
from labelloop.trainer.job import run_job
from labelloop.trainer.runs import Trainer
from labelloop.v1 import trainer_pb2
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.trainer.datasets import CLASSES, FEATURES, Fixture, write_digits

PROBE = {"mode": hparams.LINEAR_PROBE, "seed": 0}
SEEN = [c for c in CLASSES if c != "9"]  # class 9 is never labeled: its column must be 0


def quiet(progress: float, message: str) -> None:
    pass


def split_ids(fx: Fixture, split: str) -> list[str]:
    return fx.examples.loc[fx.examples["split"] == split, "example_id"].tolist()


def test_accuracy(store: LocalStore, result: dict[str, Any], fx: Fixture) -> float:
    probs = store.get_array(result["test_probabilities_key"])
    truth = fx.examples.loc[fx.examples["split"] == "test", "digit"].to_numpy()
    return float((np.asarray(CLASSES)[probs.argmax(axis=1)] == truth).mean())


test_accuracy.__test__ = False  # type: ignore[attr-defined] - a helper, not a test


def sklearn_reference(features: np.ndarray, fx: Fixture, pool_rows: np.ndarray) -> np.ndarray:
    """Test probabilities of a standardized multinomial logistic regression, in the dataset's classes."""
    features = features.astype(np.float64)  # as the probe: float32 would stop lbfgs elsewhere
    labeled = fx.examples.set_index("example_id").index.get_indexer(fx.labels["example_id"])
    scaler = StandardScaler().fit(features[pool_rows])
    model = LogisticRegression(C=probe.DEFAULT_C, max_iter=probe.MAX_ITER, random_state=0)
    model.fit(scaler.transform(features[labeled]), fx.labels["label"].to_numpy())
    test_rows = np.flatnonzero(fx.examples["split"].to_numpy() == "test")
    proba = model.predict_proba(scaler.transform(features[test_rows]))
    out = np.zeros((len(test_rows), len(CLASSES)))
    for j, c in enumerate(model.classes_):
        out[:, CLASSES.index(str(c))] = proba[:, j]
    return out


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Fixture, Path]:
    root = tmp_path_factory.mktemp("probe-tabular")
    store = LocalStore(root / "store")
    fx = write_digits(store, n_pool=400, n_test=300, n_labeled=30, labeled_classes=SEEN)
    return store, fx, root / "cache"


def test_tabular_probe_matches_sklearn_and_a_plain_logistic_regression(tabular: tuple) -> None:
    store, fx, cache = tabular
    spec = fx.spec("p1", "runs/p1/", PROBE, dataset="datasets/digits")
    result = run_job(spec, store, quiet, cache_dir=cache)

    assert result["mode"] == hparams.LINEAR_PROBE and result["embed_seconds"] > 0
    pool = store.get_array(result["pool_probabilities_key"])
    test = store.get_array(result["test_probabilities_key"])
    assert pool.shape == (400, 10) and test.shape == (300, 10) and pool.dtype == np.float32
    np.testing.assert_allclose(test.sum(axis=1), 1.0, atol=1e-5)
    assert not pool[:, CLASSES.index("9")].any()  # never labeled: a zero column, as fine-tuning gives

    # Embeddings: one row per pool example, with the pool probabilities' ids; tabular = standardized features.
    emb = store.get_array(result["pool_embeddings_key"])
    assert emb.dtype == np.float32 and emb.shape == (400, len(FEATURES)) == (400, result["embedding_dims"])
    assert store.get_json(result["pool_example_ids_key"]) == split_ids(fx, "pool")
    raw = fx.examples[FEATURES].to_numpy(dtype=np.float64)
    standardized = embeddings.standardized(fx.examples[FEATURES])
    np.testing.assert_allclose(emb, standardized[: len(emb)], atol=1e-5)

    pool_rows = np.flatnonzero(fx.examples["split"].to_numpy() == "pool")
    np.testing.assert_allclose(test, sklearn_reference(standardized, fx, pool_rows), atol=1e-4)

    # Against a plain (unstandardized) logistic regression on the raw features with the same 30 labels:
    # standardizing costs a few points on digits (near-constant border pixels get unit variance).
    labeled = fx.examples.set_index("example_id").index.get_indexer(fx.labels["example_id"])
    plain = LogisticRegression(max_iter=3000).fit(raw[labeled], fx.labels["label"])
    test_rows = fx.examples["split"].to_numpy() == "test"
    plain_accuracy = plain.score(raw[test_rows], fx.examples.loc[test_rows, "digit"])
    assert test_accuracy(store, result, fx) >= plain_accuracy - 0.06


def test_second_run_reads_the_cache_and_a_prediction_run_reuses_the_probe(tabular: tuple) -> None:
    store, fx, cache = tabular
    first = run_job(
        fx.spec("c1", "runs/c1/", PROBE, dataset="datasets/digits"), store, quiet, cache_dir=cache
    )
    cache_file = store.path(first["embeddings_cache_key"] + embeddings.EMBEDDINGS_FILE)
    before = (cache_file.read_bytes(), cache_file.stat().st_mtime_ns)
    second = run_job(
        fx.spec("c2", "runs/c2/", PROBE, dataset="datasets/digits"), store, quiet, cache_dir=cache
    )
    assert second["embed_seconds"] == 0.0
    assert (cache_file.read_bytes(), cache_file.stat().st_mtime_ns) == before
    assert first["embeddings_cache_key"].startswith("datasets/digits/embeddings/")

    assert probe.is_probe_model(store, second["model_key"])
    predict = fx.spec("c3", "runs/c3/", kind=JobKind.PREDICT, model_key=second["model_key"], labels_key="")
    predicted = run_job(predict, store, quiet, cache_dir=cache)
    assert predicted["mode"] == hparams.LINEAR_PROBE and predicted["embed_seconds"] == 0.0
    np.testing.assert_array_equal(
        store.get_array(predicted["test_probabilities_key"]),
        store.get_array(second["test_probabilities_key"]),
    )
    np.testing.assert_array_equal(
        store.get_array(predicted["pool_embeddings_key"]), store.get_array(second["pool_embeddings_key"])
    )


def test_image_probe_embeds_once_and_an_embedding_run_needs_no_labels(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=60, n_test=40, n_labeled=30, images=True)
    cache = tmp_path / "cache"
    embed = fx.spec("e1", "runs/e1/", {}, kind=JobKind.EMBED, labels_key="", dataset="datasets/digits")
    embedded = run_job(embed, store, quiet, cache_dir=cache)
    assert embedded["embed_seconds"] > 0 and "pool_probabilities_key" not in embedded
    vectors = store.get_array(embedded["pool_embeddings_key"])
    assert vectors.shape == (60, 1280) and vectors.dtype == np.float32  # MobileNetV2's pooled features
    assert store.get_json(embedded["pool_example_ids_key"]) == split_ids(fx, "pool")

    trained = run_job(
        fx.spec("t1", "runs/t1/", PROBE, dataset="datasets/digits"), store, quiet, cache_dir=cache
    )
    assert trained["embed_seconds"] == 0.0  # the embedding run filled the cache
    np.testing.assert_array_equal(store.get_array(trained["pool_embeddings_key"]), vectors)
    cached = embeddings.read_cache(store, trained["embeddings_cache_key"])
    assert cached is not None
    pool_rows = np.flatnonzero(fx.examples["split"].to_numpy() == "pool")
    reference = sklearn_reference(cached.matrix, fx, pool_rows)
    np.testing.assert_allclose(store.get_array(trained["test_probabilities_key"]), reference, atol=1e-4)
    assert test_accuracy(store, trained, fx) > 0.3  # 10 classes: chance is 0.1

    # The raw pixels as the backbone: another cache folder, 16x16x3 features.
    pixels = {
        **PROBE,
        "checkpoints": [{"key": embeddings.IMAGE_CHECKPOINT_KEY, "source": "labelloop:pixels"}],
    }
    by_pixels = run_job(
        fx.spec("t2", "runs/t2/", pixels, dataset="datasets/digits"), store, quiet, cache_dir=cache
    )
    assert by_pixels["embedding_dims"] == 16 * 16 * 3
    assert by_pixels["embeddings_cache_key"] != trained["embeddings_cache_key"]


@pytest.mark.slow
def test_fine_tune_from_labels_switches_to_autogluon_and_embeds_the_pool(tabular: tuple) -> None:
    store, fx, cache = tabular
    config = {
        **PROBE,
        "fine_tune_from_labels": 30,  # the snapshot has 30 labels: fine-tune
        "hyperparameters": {"model.names": "[numerical_mlp]", "optim.max_epochs": "3"},
    }
    result = run_job(
        fx.spec("f1", "runs/f1/", config, dataset="datasets/digits"), store, quiet, cache_dir=cache
    )
    assert result["mode"] == hparams.FINE_TUNE and not probe.is_probe_model(store, result["model_key"])
    emb = store.get_array(result["pool_embeddings_key"])
    assert emb.shape[0] == 400 and emb.shape[1] == result["embedding_dims"] > 0 and emb.dtype == np.float32
    assert result["embed_seconds"] > 0
    assert hparams.uses_linear_probe({**config, "fine_tune_from_labels": 31}, 30)


# Request-time validation ------------------------------------------------------------------------


class InlineExecutor(Executor):
    """Runs each job at once in this process: the trainer's bookkeeping without a worker."""

    def __init__(self, store: LocalStore, cache: Path):
        self.store, self.cache, self.statuses = store, cache, {}  # type: ignore[var-annotated]
        self.submitted: list[JobSpec] = []

    @classmethod
    def from_settings(cls, settings: Any, store: Any) -> InlineExecutor:
        raise NotImplementedError("built by the test")

    def submit(self, spec: JobSpec) -> None:
        self.submitted.append(spec)
        result = run_job(spec, self.store, quiet, cache_dir=self.cache)
        self.statuses[spec.job_id] = JobStatus(JobState.SUCCEEDED, 1.0, "done", result)

    def status(self, job_id: str) -> JobStatus:
        return self.statuses[job_id]

    def cancel(self, job_id: str) -> None:
        pass

    def reattach(self, spec: JobSpec) -> bool:
        return False


def config(**fields: Any) -> trainer_pb2.TrainerConfig:
    return trainer_pb2.TrainerConfig(**fields)


def test_embedding_run_through_the_trainer_is_idempotent_and_rejects_bad_input(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    write_digits(store, n_pool=50, n_test=10)
    executor = InlineExecutor(store, tmp_path / "cache")
    trainer = Trainer(store, StoreCatalog(store), executor, poll_seconds=0.01)
    try:
        record = trainer.create_embedding_run(
            "datasets/digits", hparams.config_to_dict(config()), "embeds/e1/", request_id="r1"
        )
        again = trainer.create_embedding_run(
            "datasets/digits", hparams.config_to_dict(config()), "embeds/e2/", request_id="r1"
        )
        assert again.id == record.id and len(executor.submitted) == 1
        assert executor.submitted[0].kind == JobKind.EMBED
        for _ in range(200):
            if (done := trainer.get(record.name)).state.done:
                break
            time.sleep(0.01)
        result = ops.to_proto(done, store).result
        assert result.pool_embeddings.shape == [50, len(FEATURES)] and result.embed_seconds > 0
        assert result.pool_embeddings.example_ids_uri.endswith("embeds/e1/pool_example_ids.json")
        assert not result.pool_probabilities.uri and not result.model_uri

        before = sorted(store.list(""))
        with pytest.raises(NotFound):
            trainer.create_embedding_run("datasets/nope", hparams.config_to_dict(config()))
        image_store = LocalStore(tmp_path / "images")
        write_digits(image_store, dataset="pics", n_pool=4, n_test=2, images=True)
        image_trainer = Trainer(image_store, StoreCatalog(image_store), executor)
        try:
            hub = config(
                checkpoints=[trainer_pb2.Checkpoint(key=embeddings.IMAGE_CHECKPOINT_KEY, source="resnet18")]
            )
            with pytest.raises(FailedPrecondition, match="needs a download"):
                image_trainer.create_embedding_run("datasets/pics", hparams.config_to_dict(hub))
            text = config(
                checkpoints=[
                    trainer_pb2.Checkpoint(
                        key=embeddings.IMAGE_CHECKPOINT_KEY, source="labelloop:text/all-minilm-l6-v2"
                    )
                ]
            )
            with pytest.raises(InvalidArgument, match="text model"):
                image_trainer.create_embedding_run("datasets/pics", hparams.config_to_dict(text))
        finally:
            image_trainer.close()
        assert sorted(store.list("")) == before  # nothing stored for rejected requests
        assert len(executor.submitted) == 1
    finally:
        trainer.close()


def test_mode_and_fine_tune_from_labels_are_validated(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="fine_tune_from_labels"):
        hparams.config_to_dict(config(mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE, fine_tune_from_labels=-1))
    with pytest.raises(InvalidArgument, match="mode"):
        hparams.config_to_dict(config(mode=7))  # type: ignore[arg-type]
    pixels = [trainer_pb2.Checkpoint(key=embeddings.IMAGE_CHECKPOINT_KEY, source="labelloop:pixels")]
    with pytest.raises(InvalidArgument, match="no network to fine-tune"):
        hparams.config_to_dict(config(checkpoints=pixels))
    hparams.config_to_dict(config(mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE, checkpoints=pixels))
    as_dict = hparams.config_to_dict(
        config(mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE, fine_tune_from_labels=100)
    )
    assert (as_dict["mode"], as_dict["fine_tune_from_labels"]) == (hparams.LINEAR_PROBE, 100)
    assert hparams.config_to_dict(config())["mode"] == hparams.FINE_TUNE
    assert hparams.uses_linear_probe(as_dict, 99) and not hparams.uses_linear_probe(as_dict, 100)
    assert not hparams.uses_linear_probe({**as_dict, "mode": hparams.FINE_TUNE}, 10)
    with pytest.raises(InvalidArgument, match=r"linear_probe\.c"):
        probe.probe_c({"linear_probe.c": -1})
    # The probe's own keys never reach AutoGluon when a run fine-tunes.
    args = hparams.fit_args(
        {"hyperparameters": {"linear_probe.c": "2", "optim.max_epochs": "3"}},
        n_labeled=10,
        image_column="",
        store=LocalStore(tmp_path),
        cache_dir=tmp_path,
    )
    assert "linear_probe.c" not in args.hyperparameters and args.hyperparameters["optim.max_epochs"] == 3
