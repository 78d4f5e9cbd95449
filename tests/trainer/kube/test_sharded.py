"""Sharded prediction on Kubernetes (sharded.py): a PREDICT of a large pool is an Indexed Job of one
pod per shard, whose shards the executor merges, once, when the Job completes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.trainer.contract import JobKind, JobSpec, JobState
from labelloop.trainer.executors.kubernetes import KubernetesExecutor

from tests.trainer.datasets import write_digits
from tests.trainer.kube.jobs import PREFIX, Clock, make_spec, template_env, validate
from tests.trainer.kube.kube_double import FakeKubernetesApi, fixture
from tests.trainer.test_shards import write_fake_shards

PREDICT_NAME = "labelloop-e1-r3-predict"
MODEL = "experiments/e1/rounds/2/model/"


@pytest.fixture
def sharding_executor(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, settings: Settings
) -> KubernetesExecutor:
    env = template_env(LABELLOOP_PREDICT_SHARD_ROWS="40")
    return KubernetesExecutor(
        settings, store, env=env, batch_api=api, core_api=api, clock=clock, cache_seconds=0
    )


def predict_spec(store: LocalStore, n_pool: int = 100, n_test: int = 20, dataset: str = "digits") -> JobSpec:
    fx = write_digits(store, dataset=dataset, n_pool=n_pool, n_test=n_test, n_labeled=10)
    return make_spec(
        "e1-r3-predict",
        kind=JobKind.PREDICT,
        examples_key=fx.examples_key,
        classes=["a", "b", "c"],
        model_key=MODEL,
        labels_key="",
    )


def test_large_pool_prediction_is_an_indexed_job_merged_on_completion(
    sharding_executor: KubernetesExecutor,
    api: FakeKubernetesApi,
    store: LocalStore,
) -> None:
    spec = predict_spec(store)  # 100 pool rows, 40 per shard: 3 shards
    sharding_executor.submit(spec)
    (call,) = api.calls_to("create_namespaced_job")
    job = call["body"]
    validate(job)
    assert job["metadata"]["name"] == PREDICT_NAME
    s = job["spec"]
    assert (s["completionMode"], s["completions"], s["parallelism"]) == ("Indexed", 3, 3)
    env = {e["name"]: e.get("value") for e in s["template"]["spec"]["containers"][0]["env"]}
    assert env["LABELLOOP_SHARD_COUNT"] == "3" and env["LABELLOOP_SHARD_PREFIX"] == PREFIX + "shards/"
    assert JobSpec.from_json(store.get_bytes(PREFIX + "spec.json").decode()) == spec
    assert store.get_json(PREFIX + "shards/plan.json") == {"job_id": "e1-r3-predict", "shards": 3}

    # While it runs: progress is the share of shards done (status.json is not used by sharded pods).
    api.jobs[PREDICT_NAME] = fixture("job_indexed_running.json")
    api.pods[PREDICT_NAME] = fixture("pods_running.json")
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.RUNNING
    assert status.progress == pytest.approx(1 / 3) and status.message == "predicting in 3 shards: 1 done"

    # The pods wrote their shards; the Job completes; status() merges them, exactly once.
    full = write_fake_shards(store, PREFIX, n_pool=100, n_test=20, count=3, job_id="e1-r3-predict")
    api.jobs[PREDICT_NAME] = fixture("job_indexed_complete.json")
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.SUCCEEDED, status.error
    result = status.result
    assert result == store.get_json(PREFIX + "result.json")
    assert (result["n_pool"], result["n_test"], result["shards"]) == (100, 20, 3)
    assert result["model_key"] == "runs/t/model/"
    for split, (probs, ids) in full.items():
        np.testing.assert_array_equal(store.get_array(result[f"{split}_probabilities_key"]), probs)
        assert store.get_json(result[f"{split}_example_ids_key"]) == ids
    # Later reads answer from the merged result.json: they would fail if they merged again.
    for key in list(store.list(PREFIX + "shards/")):
        store.delete(key)
    assert sharding_executor.status("e1-r3-predict") == status
    del api.jobs[PREDICT_NAME]  # ttlSecondsAfterFinished
    assert sharding_executor.status("e1-r3-predict") == status


def test_small_pools_training_and_disabled_sharding_stay_one_job(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore, settings: Settings
) -> None:
    big = predict_spec(store, n_pool=100)
    # Training on the same 100-row pool: always one Job.
    sharding_executor.submit(
        make_spec("e1-r4-train", output_prefix="experiments/e1/rounds/4/", examples_key=big.examples_key)
    )
    small = predict_spec(store, n_pool=40, dataset="small")  # exactly one shard's worth
    sharding_executor.submit(small)
    env = template_env(LABELLOOP_PREDICT_SHARD_ROWS="0")
    disabled = KubernetesExecutor(settings, store, env=env, batch_api=api, core_api=api)
    disabled.submit(replace(big, job_id="e1-r5-predict", output_prefix="experiments/e1/rounds/5/"))
    calls = api.calls_to("create_namespaced_job")
    assert len(calls) == 3
    for call in calls:
        validate(call["body"])
        spec = call["body"]["spec"]
        assert "completionMode" not in spec and spec["backoffLimit"] == 1
        env_names = {e["name"] for e in spec["template"]["spec"]["containers"][0]["env"]}
        assert "LABELLOOP_SHARD_COUNT" not in env_names
    assert not store.exists("experiments/e1/rounds/5/shards/plan.json")
    with pytest.raises(InvalidArgument, match="LABELLOOP_PREDICT_SHARD_ROWS"):
        KubernetesExecutor(
            settings, store, env={**env, "LABELLOOP_PREDICT_SHARD_ROWS": "lots"}, batch_api=api, core_api=api
        )


def shard_counts(api: FakeKubernetesApi) -> list[int | None]:
    """The completions of each Job created so far: None for an ordinary (unsharded) Job."""
    return [call["body"]["spec"].get("completions") for call in api.calls_to("create_namespaced_job")]


def test_pool_size_comes_from_dataset_json_else_from_the_examples(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    spec = predict_spec(store, n_pool=100)
    meta = store.get_json("datasets/digits/dataset.json")
    store.put_json("datasets/digits/dataset.json", {**meta, "pool_count": 200})  # trusted: no counting
    sharding_executor.submit(replace(spec, job_id="by-metadata", output_prefix="p/1/"))
    store.delete("datasets/digits/dataset.json")
    sharding_executor.submit(replace(spec, job_id="by-counting", output_prefix="p/2/"))  # the split column
    store.delete(spec.examples_key)
    sharding_executor.submit(replace(spec, job_id="unreadable", output_prefix="p/3/"))  # the job will say why
    assert shard_counts(api) == [5, 3, None]


def test_parallelism_comes_from_the_env(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, settings: Settings
) -> None:
    env = template_env(LABELLOOP_PREDICT_SHARD_ROWS="10", LABELLOOP_PREDICT_SHARD_PARALLELISM="4")
    executor = KubernetesExecutor(settings, store, env=env, batch_api=api, core_api=api, clock=clock)
    executor.submit(predict_spec(store, n_pool=95))
    (call,) = api.calls_to("create_namespaced_job")
    validate(call["body"])
    assert (call["body"]["spec"]["completions"], call["body"]["spec"]["parallelism"]) == (10, 4)


def test_completed_indexed_job_with_a_missing_shard_fails_naming_it(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    write_fake_shards(store, PREFIX, n_pool=100, n_test=20, count=3, job_id="e1-r3-predict", skip=[1])
    api.jobs[PREDICT_NAME] = fixture("job_indexed_complete.json")
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.FAILED
    assert status.error.startswith("FailedPrecondition: cannot merge the sharded prediction")
    assert "1 of 3 shards are missing (no done marker): shards 1" in status.error
    assert not store.exists(PREFIX + "result.json")


def test_failed_shard_reports_its_own_error(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    api.jobs[PREDICT_NAME] = fixture("job_indexed_failed.json")
    api.pods[PREDICT_NAME] = fixture("pods_oomkilled_twice.json")
    store.put_json(
        PREFIX + "shards/1.status.json",
        {"state": "failed", "progress": 0.0, "message": "failed", "error": "NotFound: no model"},
    )
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.FAILED
    assert status.error.startswith("shard 1: NotFound: no model; Kubernetes: MaxFailedIndexesExceeded")
    assert "last pod: OOMKilled (exit code 137)" in status.error


def test_sharded_job_removed_before_the_merge_is_merged_from_its_plan(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    sharding_executor.submit(predict_spec(store))
    write_fake_shards(store, PREFIX, n_pool=100, n_test=20, count=2, job_id="e1-r3-predict")
    del api.jobs[PREDICT_NAME]  # completed and removed by its TTL while the trainer was not looking
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.FAILED and "deleted before it finished" in status.error  # 2 of 3 shards
    write_fake_shards(store, PREFIX, n_pool=100, n_test=20, count=3, job_id="e1-r3-predict")
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.SUCCEEDED and status.result["shards"] == 3
