"""Sharded prediction: slicing, the pod's shard outputs, and merging them into the ordinary result.

The slow test runs a real sharded PREDICT in-process (the pod entry point once per index, with the
env vars an Indexed Job sets) against a tiny tabular model, merges, and compares with an unsharded
PREDICT of the same model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labelloop.core.errors import FailedPrecondition
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.trainer import data
from labelloop.trainer.contract import JobKind
from labelloop.trainer.job import _load_shard_examples, main, run_job
from labelloop.trainer.shards import (
    SHARD_COUNT_ENV,
    SHARD_INDEX_ENV,
    SHARD_PREFIX_ENV,
    Shard,
    merge_shards,
    shards_prefix,
    slice_bounds,
)

from tests.trainer.datasets import CLASSES, write_digits
from tests.trainer.test_job import TABULAR, Progress, check_outputs

# Slicing and the pod's environment --------------------------------------------------------------


@pytest.mark.parametrize(("n_rows", "count"), [(0, 3), (2, 5), (10, 3), (80, 3), (1000, 7), (7, 7)])
def test_slices_are_contiguous_disjoint_and_cover_every_row(n_rows: int, count: int) -> None:
    bounds = [slice_bounds(n_rows, i, count) for i in range(count)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n_rows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1  # even shares
    with pytest.raises(ValueError, match="outside"):
        slice_bounds(n_rows, count, count)


def test_shard_comes_from_the_indexed_jobs_env() -> None:
    prefix = "experiments/e1/rounds/3/"
    assert Shard.from_env({}, prefix) is None
    assert Shard.from_env({SHARD_COUNT_ENV: "1", SHARD_INDEX_ENV: "0"}, prefix) is None
    shard = Shard.from_env({SHARD_COUNT_ENV: "4", SHARD_INDEX_ENV: "2"}, prefix)
    assert shard == Shard(2, 4, prefix + "shards/")
    assert shard.probabilities_key("pool") == prefix + "shards/2.npy"  # shard_key of the executor
    assert shard.ids_key("test") == prefix + "shards/2.test.ids.json"
    assert shard.done_key == prefix + "shards/2.done.json"
    env = {SHARD_COUNT_ENV: "4", SHARD_INDEX_ENV: "3", SHARD_PREFIX_ENV: "elsewhere/s"}
    assert Shard.from_env(env, prefix) == Shard(3, 4, "elsewhere/s/")
    with pytest.raises(FailedPrecondition, match="JOB_COMPLETION_INDEX is not set"):
        Shard.from_env({SHARD_COUNT_ENV: "4"}, prefix)
    with pytest.raises(FailedPrecondition, match=r"outside 0\.\.3"):
        Shard.from_env({SHARD_COUNT_ENV: "4", SHARD_INDEX_ENV: "4"}, prefix)
    with pytest.raises(FailedPrecondition, match="not a whole number"):
        Shard.from_env({SHARD_COUNT_ENV: "many", SHARD_INDEX_ENV: "0"}, prefix)


def test_a_training_job_cannot_be_sharded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=20, n_test=5, n_labeled=10)
    with pytest.raises(FailedPrecondition, match="only PREDICT"):
        run_job(fx.spec("t", "runs/t/", TABULAR), store, Progress(), tmp_path, Shard(0, 2, "runs/t/shards/"))


def test_a_shard_resolves_only_its_own_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "store")
    fx = write_digits(store, n_pool=10, n_test=5, n_labeled=4, images=True, image_size=8)
    asked: list[str] = []
    real = data.local_image_paths

    def recording(store: ObjectStore, keys: Any, cache_dir: Path) -> list[str]:
        asked.extend(keys)
        return real(store, keys, cache_dir)

    monkeypatch.setattr(data, "local_image_paths", recording)
    spec = fx.spec("p", "runs/p/", kind=JobKind.PREDICT, model_key="m/", labels_key="")
    examples, layout = _load_shard_examples(spec, store, tmp_path, Shard(1, 3, "runs/p/shards/"))
    assert layout == {"rows": {"pool": [3, 6], "test": [1, 3]}, "totals": {"pool": 10, "test": 5}}
    pool = fx.examples[fx.examples["split"] == "pool"].iloc[3:6]
    test = fx.examples[fx.examples["split"] == "test"].iloc[1:3]
    assert examples["example_id"].tolist() == [*pool["example_id"], *test["example_id"]]
    assert asked == [*pool["image"], *test["image"]]  # on S3 these are the only downloads
    assert all(Path(p).is_file() for p in examples["image"])


# Merging (shard outputs written as a pod writes them, without a model) --------------------------


def write_fake_shards(
    store: ObjectStore,
    prefix: str,
    *,
    n_pool: int,
    n_test: int,
    count: int,
    job_id: str = "p1",
    classes: list[str] | None = None,
    skip: Iterable[int] = (),
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Shard outputs as `job._predict_shard` writes them; returns the full arrays and ids per split."""
    classes = classes or ["a", "b", "c"]
    rng = np.random.default_rng(seed)
    full: dict[str, tuple[np.ndarray, list[str]]] = {}
    for split, n in (("pool", n_pool), ("test", n_test)):
        probs = rng.dirichlet(np.ones(len(classes)), size=n).astype(np.float32)
        full[split] = (probs, [f"{split}-{i:05d}" for i in range(n)])
    for i in range(count):
        if i in set(skip):
            continue
        shard = Shard(i, count, shards_prefix(prefix))
        rows = {}
        for split, (probs, ids) in full.items():
            lo, hi = shard.bounds(len(ids))
            rows[split] = [lo, hi]
            store.put_array(shard.probabilities_key(split), probs[lo:hi])
            store.put_json(shard.ids_key(split), ids[lo:hi])
        summary = {
            "job_id": job_id,
            "index": i,
            "count": count,
            "classes": classes,
            "model_key": "runs/t/model/",
            "rows": rows,
            "totals": {"pool": n_pool, "test": n_test},
            "test_correct": rows["test"][1] - rows["test"][0] - 1 if rows["test"][1] > rows["test"][0] else 0,
            "test_known": rows["test"][1] - rows["test"][0],
            "predict_seconds": 1.0 + i,
        }
        store.put_json(shard.done_key, summary)
    return full


def test_merge_assembles_the_ordinary_result_chunk_by_chunk(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    prefix = "experiments/e1/rounds/3/"
    full = write_fake_shards(store, prefix, n_pool=103, n_test=11, count=4)
    result = merge_shards(store, prefix, 4, job_id="p1", chunk_rows=5)
    for split, (probs, ids) in full.items():
        np.testing.assert_array_equal(store.get_array(f"{prefix}{split}_probabilities.npy"), probs)
        assert store.get_json(f"{prefix}{split}_example_ids.json") == ids
        assert result[f"{split}_probabilities_key"] == f"{prefix}{split}_probabilities.npy"
        assert result[f"n_{split}"] == len(ids)
    assert result["classes"] == ["a", "b", "c"] and result["shards"] == 4
    assert result["test_accuracy"] == pytest.approx((11 - 4) / 11)  # each fake shard misses one
    assert result["predict_seconds"] == 4.0 and result["fit_seconds"] == 0.0
    assert result["model_key"] == "runs/t/model/"
    assert store.get_json(prefix + "result.json") == result
    assert merge_shards(store, prefix, 4) == result  # idempotent


def test_merge_of_an_empty_test_split(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_fake_shards(store, "r/", n_pool=5, n_test=0, count=3)
    result = merge_shards(store, "r/", 3)
    assert store.get_array("r/test_probabilities.npy").shape == (0, 3)
    assert result["n_test"] == 0 and result["test_accuracy"] is None


def test_merge_names_the_missing_shards(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_fake_shards(store, "r/", n_pool=50, n_test=10, count=5, skip=[1, 3])
    with pytest.raises(
        FailedPrecondition, match=r"2 of 5 shards are missing \(no done marker\): shards 1, 3"
    ):
        merge_shards(store, "r/", 5)
    assert not store.exists("r/result.json") and not store.exists("r/pool_probabilities.npy")


def test_merge_rejects_shards_that_disagree(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_fake_shards(store, "r/", n_pool=30, n_test=6, count=3)
    # Shard 1's arrays have 4 columns although every marker says 3 classes.
    store.put_array("r/shards/1.npy", np.zeros((10, 4), np.float32))
    with pytest.raises(FailedPrecondition, match="disagree on the class count"):
        merge_shards(store, "r/", 3)
    assert not store.exists("r/result.json")
    write_fake_shards(store, "r/", n_pool=30, n_test=6, count=3)
    marker = store.get_json("r/shards/2.done.json")
    store.put_json("r/shards/2.done.json", {**marker, "classes": ["a", "b"]})
    with pytest.raises(FailedPrecondition, match="shard 2 has classes"):
        merge_shards(store, "r/", 3)
    write_fake_shards(store, "r/", n_pool=30, n_test=6, count=3)
    with pytest.raises(FailedPrecondition, match="belongs to job 'p1', not 'p2'"):
        merge_shards(store, "r/", 3, job_id="p2")
    with pytest.raises(FailedPrecondition, match="shard 0 of 3, not 0 of 2"):
        merge_shards(store, "r/", 2)


# A real sharded PREDICT ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Any, dict[str, Any], Path]:
    root = tmp_path_factory.mktemp("shards")
    store = LocalStore(root / "store")
    fx = write_digits(store, n_pool=80, n_test=40, n_labeled=60)
    result = run_job(fx.spec("t1", "runs/t1/", TABULAR), store, Progress(), cache_dir=root / "cache")
    return store, fx, result, root


@pytest.mark.slow
def test_sharded_prediction_merges_to_the_unsharded_result(
    trained: tuple[LocalStore, Any, dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, fx, train_result, root = trained
    model_key = train_result["model_key"]
    plain_spec = fx.spec("p1", "runs/p1/", kind=JobKind.PREDICT, model_key=model_key, labels_key="")
    plain = run_job(plain_spec, store, Progress(), cache_dir=root / "cache")

    spec = fx.spec("p2", "runs/p2/", kind=JobKind.PREDICT, model_key=model_key, labels_key="")
    store.put_bytes("runs/p2/spec.json", spec.to_json().encode())
    monkeypatch.setenv("LABELLOOP_STORAGE_ROOT", str(store.root))
    monkeypatch.setenv("LABELLOOP_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv(SHARD_COUNT_ENV, "3")
    monkeypatch.setenv(SHARD_PREFIX_ENV, "runs/p2/shards/")
    for index in range(3):  # the three pods of the Indexed Job, one after another
        monkeypatch.setenv(SHARD_INDEX_ENV, str(index))
        assert main(["--spec-json", "runs/p2/spec.json"]) == 0
        status = store.get_json(f"runs/p2/shards/{index}.status.json")
        assert status["state"] == "succeeded"
        done = store.get_json(f"runs/p2/shards/{index}.done.json")
        assert done["rows"]["pool"] == list(slice_bounds(80, index, 3))
        assert done["rows"]["test"] == list(slice_bounds(40, index, 3))
        assert not store.exists("runs/p2/result.json")  # only the merge writes it
    assert not store.exists("runs/p2/status.json")  # the pods wrote their own status files

    merged = merge_shards(store, "runs/p2/", 3, job_id="p2", chunk_rows=16)
    check_outputs(store, merged, fx)  # same ids in the same order, shapes, rows summing to 1, result.json
    for split in ("pool", "test"):
        np.testing.assert_allclose(
            store.get_array(merged[f"{split}_probabilities_key"]),
            store.get_array(plain[f"{split}_probabilities_key"]),
            atol=1e-5,
        )
        assert store.get_json(merged[f"{split}_example_ids_key"]) == store.get_json(
            plain[f"{split}_example_ids_key"]
        )
    # The fitted network's embeddings of the pool, merged from the shards' slices like the probabilities.
    np.testing.assert_allclose(
        store.get_array(merged["pool_embeddings_key"]),
        store.get_array(plain["pool_embeddings_key"]),
        atol=1e-4,
    )
    assert merged["embedding_dims"] == plain["embedding_dims"] > 0
    assert merged["test_accuracy"] == pytest.approx(plain["test_accuracy"])
    assert merged["classes"] == plain["classes"] == CLASSES
    timings = ("predict_seconds", "embed_seconds", "shards")
    same = {k: v for k, v in merged.items() if k not in timings and "_key" not in k}
    assert same == {k: plain[k] for k in same}
    assert set(merged) - set(plain) == {"shards"} and merged["model_key"] == plain["model_key"]
    print("\nsharded predict: " + json.dumps({k: merged[k] for k in ("n_pool", "n_test", "test_accuracy")}))
