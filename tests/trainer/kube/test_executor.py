"""KubernetesExecutor: the Jobs it builds, and how it reads their state.

The Job objects are validated against the real Kubernetes schemas (kubernetes-validate). The status,
watch and cancel logic runs against FakeKubernetesApi (tests/deploy/kube_double.py), a test double of
BatchV1Api/CoreV1Api that answers with recorded API responses: the JSON files in tests/deploy/fixtures/
are hand-written Job, PodList, watch-event and Status objects in exactly the shape the API server sends
(and they validate against the Kubernetes schema themselves, see the first test).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import numpy as np
import pytest
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.errors import AlreadyExists, InvalidArgument, NotFound
from labelloop.core.storage import LocalStore
from labelloop.trainer import shards as sharding
from labelloop.trainer.executors.base import JobKind, JobSpec, JobState
from labelloop.trainer.executors.kubernetes import (
    EXPERIMENT_LABEL,
    JobTemplate,
    KubernetesExecutor,
    build_job,
    build_sharded_prediction_job,
    job_name,
    label_value,
    shard_count,
    shard_key,
    to_manifest,
)

from tests.deploy.kube_double import FIXTURES, FakeKubernetesApi, fixture
from tests.trainer.datasets import write_digits
from tests.trainer.test_shards import write_fake_shards

KUBE_VERSIONS = ("1.30", "1.37")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()  # creationTimestamp in the fixtures
NAME = "labelloop-e1-r3-train"
PREFIX = "experiments/e1/rounds/3/"

TEMPLATE = {
    "image": "registry.example.com/labelloop-trainer:0.1.0",
    "namespace": "ml",
    "serviceAccountName": "labelloop-trainer-job",
    "gpus": 1,
    "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "16Gi"}},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "labels": {"app.kubernetes.io/instance": "labelloop", "app.kubernetes.io/name": "labelloop"},
    "env": [
        {"name": "LABELLOOP_STORAGE_BACKEND", "value": "s3"},
        {
            "name": "LABELLOOP_S3_ACCESS_KEY",
            "valueFrom": {"secretKeyRef": {"name": "labelloop-objectstore", "key": "accessKey"}},
        },
    ],
    "imagePullSecrets": ["regcred"],
}


def make_spec(job_id: str = "e1-r3-train", **changes: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": job_id,
        "kind": JobKind.TRAIN,
        "examples_key": "datasets/digits/examples.parquet",
        "output_prefix": PREFIX,
        "classes": ["0", "1", "2"],
        "labels_key": "datasets/digits/snapshots/r3/labels.parquet",
        "config": {"num_gpus": -1},
        "labels": {"experiment": "e1", "round": "3"},
    }
    values.update(changes)
    return JobSpec(**values)


def template(**changes: Any) -> JobTemplate:
    return JobTemplate.from_json(json.dumps({**TEMPLATE, **changes}))


def validate(manifest: dict[str, Any]) -> None:
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


# The recorded API objects --------------------------------------------------------------------------


def test_fixtures_are_real_api_objects() -> None:
    for path in sorted(FIXTURES.glob("job_*.json")):
        validate(fixture(path.name))
    for path in sorted(FIXTURES.glob("pods_*.json")):
        for pod in fixture(path.name)["items"]:
            validate({"apiVersion": "v1", "kind": "Pod", **pod})
    for line in (FIXTURES / "job_watch_events.jsonl").read_text().splitlines():
        event = json.loads(line)
        assert event["type"] in ("ADDED", "MODIFIED", "DELETED")
        validate(event["object"])


# Building Jobs -------------------------------------------------------------------------------------


def test_built_job_validates_and_runs_the_job_module() -> None:
    job = to_manifest(build_job(make_spec(), PREFIX + "spec.json", template()))
    validate(job)
    assert job["metadata"]["name"] == NAME and job["metadata"]["namespace"] == "ml"
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (
        1,
        21600,
        86400,
    )
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "labelloop.trainer.job", "--spec-json", PREFIX + "spec.json"]
    assert c["image"] == TEMPLATE["image"]
    assert c["resources"] == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert c["env"] == TEMPLATE["env"]  # secrets stay secretKeyRefs
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "labelloop-trainer-job"
    assert pod["automountServiceAccountToken"] is False
    assert pod["nodeSelector"] == TEMPLATE["nodeSelector"] and pod["tolerations"] == TEMPLATE["tolerations"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert mounts == {"/tmp", "/var/cache/labelloop", "/dev/shm"}


def test_job_labels_name_the_experiment_and_round() -> None:
    job = to_manifest(build_job(make_spec(), "k", template()))
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[EXPERIMENT_LABEL] == "e1"
        assert labels["labelloop.dev/round"] == "3"
        assert labels["labelloop.dev/kind"] == "train"
        assert labels["app.kubernetes.io/component"] == "trainer-job"  # what the NetworkPolicies admit
        assert labels["app.kubernetes.io/instance"] == "labelloop"
        assert labels["app.kubernetes.io/managed-by"] == "labelloop-trainer"
    assert job["metadata"]["annotations"]["labelloop.dev/output-prefix"] == PREFIX


@pytest.mark.parametrize(
    "value",
    [
        "e1",
        "Experiment With Spaces/and:colons",
        "a" * 200,
        "-leading-and-trailing-",
        "ünïcödé-experiment",
        "x" * 62 + "_",
        "",
    ],
)
def test_label_values_and_job_names_are_always_valid(value: str) -> None:
    label = label_value(value)
    assert LABEL_VALUE.match(label) and len(label) <= 63, label
    name = job_name(value or "x")
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    job = to_manifest(
        build_job(make_spec(job_id=value or "x", labels={"experiment": value}), "k", template())
    )
    validate(job)


def test_sanitised_values_stay_distinct() -> None:
    assert label_value("exp/1") != label_value("exp:1")
    assert job_name("A" * 80 + "1") != job_name("A" * 80 + "2")
    assert job_name("e1-r3-train") == "labelloop-e1-r3-train"  # readable when nothing had to change


def test_gpu_request_follows_the_runs_num_gpus() -> None:
    def gpus(num_gpus: int, default: int) -> str | None:
        spec = make_spec(config={"num_gpus": num_gpus})
        job = to_manifest(build_job(spec, "k", template(gpus=default)))
        return job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu")

    assert gpus(-1, 1) == "1"  # "all visible": the cluster's per-run count
    assert gpus(2, 1) == "2"
    assert gpus(0, 1) is None  # a CPU run holds no GPU
    assert gpus(-1, 0) is None


def test_template_comes_from_env_with_single_field_overrides() -> None:
    settings = Settings()
    env = {
        "LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE),
        "LABELLOOP_JOB_IMAGE": "labelloop-trainer:dev",
        "LABELLOOP_JOB_GPUS": "2",
        "LABELLOOP_JOB_NAMESPACE": "jobs",
    }
    t = JobTemplate.from_env(env, settings)
    assert (t.image, t.gpus, t.namespace) == ("labelloop-trainer:dev", 2, "jobs")
    assert t.service_account_name == "labelloop-trainer-job"
    with pytest.raises(InvalidArgument, match="unknown keys \\['gpu'\\]"):
        JobTemplate.from_json(json.dumps({**TEMPLATE, "gpu": 1}))
    with pytest.raises(InvalidArgument, match="LABELLOOP_JOB_TEMPLATE"):
        JobTemplate.from_env({}, settings)
    bare = JobTemplate.from_env({"LABELLOOP_JOB_IMAGE": "labelloop-trainer:dev"}, settings)
    assert {e["name"] for e in bare.env} >= {"LABELLOOP_STORAGE_BACKEND", "LABELLOOP_S3_ENDPOINT"}
    assert "LABELLOOP_TRAINER_EXECUTOR" not in {e["name"] for e in bare.env}
    with pytest.raises(Exception, match="tolerations"):  # the client models reject malformed fragments
        build_job(make_spec(), "k", template(tolerations=[{"key": "x", "opperator": "Exists"}]))


def test_sharded_prediction_is_an_indexed_job() -> None:
    spec = make_spec(kind=JobKind.PREDICT, model_key="experiments/e1/rounds/3/model/", labels_key="")
    job = to_manifest(build_sharded_prediction_job(spec, "k", template(), shards=16, parallelism=4))
    validate(job)
    s = job["spec"]
    assert (s["completionMode"], s["completions"], s["parallelism"]) == ("Indexed", 16, 4)
    assert (s["backoffLimitPerIndex"], s["maxFailedIndexes"]) == (1, 0)
    assert "backoffLimit" not in s
    env = {e["name"]: e.get("value") for e in s["template"]["spec"]["containers"][0]["env"]}
    assert env["LABELLOOP_SHARD_COUNT"] == "16"
    assert env["LABELLOOP_SHARD_PREFIX"] == PREFIX + "shards/"
    assert shard_key(PREFIX, 7) == PREFIX + "shards/7.npy"
    assert shard_key(PREFIX.rstrip("/"), 0) == PREFIX + "shards/0.npy"


@pytest.mark.parametrize(
    ("changes", "shards", "parallelism", "complaint"),
    [
        ({}, 4, None, "only PREDICT"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 0, None, "shards must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 100_001, None, "shards must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 4, 5, "parallelism must be"),
        ({"kind": JobKind.PREDICT, "model_key": "m/"}, 4, 0, "parallelism must be"),
        ({"kind": JobKind.PREDICT}, 4, None, "model_key"),
    ],
)
def test_sharded_prediction_validation(
    changes: dict[str, Any], shards: int, parallelism: int | None, complaint: str
) -> None:
    with pytest.raises(InvalidArgument, match=complaint):
        build_sharded_prediction_job(make_spec(**changes), "k", template(), shards, parallelism)


# The executor against the double -------------------------------------------------------------------


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> FakeKubernetesApi:
    return FakeKubernetesApi()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 60)


@pytest.fixture
def executor(api: FakeKubernetesApi, store: LocalStore, clock: Clock, tmp_path: Path) -> KubernetesExecutor:
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    env = {"LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE)}
    return KubernetesExecutor(
        settings, env=env, batch_api=api, core_api=api, store=store, clock=clock, cache_seconds=0
    )


def recorded(api: FakeKubernetesApi, job: str, pods: str | None = None) -> None:
    """The cluster now holds this recorded Job (and PodList)."""
    api.jobs[NAME] = fixture(job)
    if pods:
        api.pods[NAME] = fixture(pods)


def test_submit_writes_the_spec_and_creates_the_job(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    spec = make_spec()
    executor.submit(spec)
    assert JobSpec.from_json(store.get_bytes(PREFIX + "spec.json").decode()) == spec
    (call,) = api.calls_to("create_namespaced_job")
    assert call["namespace"] == "ml"
    validate(call["body"])
    assert call["body"]["spec"]["template"]["spec"]["containers"][0]["command"][-1] == PREFIX + "spec.json"
    executor.submit(spec)  # a retried submit finds its own Job: fine
    assert len(api.jobs) == 1
    api.jobs[NAME]["metadata"]["annotations"]["labelloop.dev/job-id"] = "someone-else"
    with pytest.raises(AlreadyExists):
        executor.submit(spec)


def test_running_job_reports_progress_from_status_json(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    recorded(api, "job_running.json", "pods_running.json")
    store.put_json(
        PREFIX + "status.json", {"state": "running", "progress": 0.42, "message": "fitting (120 s)"}
    )
    status = executor.status("e1-r3-train")
    assert (status.state, status.progress, status.message) == (JobState.RUNNING, 0.42, "fitting (120 s)")
    assert api.calls_to("list_namespaced_pod")[0]["label_selector"] == f"batch.kubernetes.io/job-name={NAME}"


def test_running_job_without_status_json_is_starting(
    executor: KubernetesExecutor, api: FakeKubernetesApi
) -> None:
    recorded(api, "job_running.json", "pods_running.json")
    status = executor.status("e1-r3-train")
    assert (status.state, status.progress, status.message) == (JobState.RUNNING, 0.0, "starting")


def test_unschedulable_gpu_job_is_pending_with_the_schedulers_reason(
    executor: KubernetesExecutor, api: FakeKubernetesApi, clock: Clock
) -> None:
    recorded(api, "job_pending.json", "pods_unschedulable.json")
    clock.now = T0 + 3600  # waiting for a GPU node is not an error; the Job's deadline bounds it
    status = executor.status("e1-r3-train")
    assert status.state == JobState.PENDING
    assert status.message.startswith("unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu")
    assert NAME in api.jobs


def test_image_pull_backoff_is_pending_then_fails_and_frees_the_gpu(
    executor: KubernetesExecutor, api: FakeKubernetesApi, clock: Clock
) -> None:
    recorded(api, "job_pending.json", "pods_image_pull_backoff.json")
    status = executor.status("e1-r3-train")
    assert status.state == JobState.PENDING and status.message.startswith(
        "ImagePullBackOff: Back-off pulling"
    )
    clock.now = T0 + 901  # past stuckSeconds (900)
    status = executor.status("e1-r3-train")
    assert status.state == JobState.FAILED
    assert "ImagePullBackOff" in status.error and "stuck for 901 s" in status.error
    assert api.calls_to("delete_namespaced_job") == [{"name": NAME, "propagation_policy": "Background"}]
    assert executor.status("e1-r3-train") == status  # stays failed once the Job is gone


def test_invalid_image_fails_at_once(executor: KubernetesExecutor, api: FakeKubernetesApi) -> None:
    recorded(api, "job_pending.json", "pods_invalid_image.json")
    status = executor.status("e1-r3-train")
    assert status.state == JobState.FAILED and "InvalidImageName" in status.error
    assert NAME not in api.jobs


def test_complete_job_returns_result_json(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    recorded(api, "job_complete.json")
    result = {"model_key": PREFIX + "model/", "test_accuracy": 0.97, "fit_seconds": 71.5}
    store.put_json(PREFIX + "result.json", result)
    status = executor.status("e1-r3-train")
    assert (status.state, status.progress, status.result) == (JobState.SUCCEEDED, 1.0, result)


def test_complete_job_without_result_json_failed(
    executor: KubernetesExecutor, api: FakeKubernetesApi
) -> None:
    recorded(api, "job_complete.json")
    status = executor.status("e1-r3-train")
    assert status.state == JobState.FAILED and "result.json" in status.error


def test_backoff_limit_failure_names_the_jobs_error_and_the_oom_kill(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    recorded(api, "job_failed_backoff.json", "pods_oomkilled_twice.json")
    store.put_json(
        PREFIX + "status.json", {"state": "failed", "progress": 0.0, "message": "failed", "error": ""}
    )
    status = executor.status("e1-r3-train")
    assert status.state == JobState.FAILED
    assert "Kubernetes: BackoffLimitExceeded: Job has reached the specified backoff limit" in status.error
    assert "last pod: OOMKilled (exit code 137)" in status.error
    store.put_json(
        PREFIX + "status.json",
        {"state": "failed", "progress": 0.3, "message": "failed", "error": "FailedPrecondition: no labels"},
    )
    status = executor.status("e1-r3-train")
    assert status.error.startswith("FailedPrecondition: no labels; Kubernetes: BackoffLimitExceeded")


def test_deadline_exceeded(executor: KubernetesExecutor, api: FakeKubernetesApi) -> None:
    recorded(api, "job_failed_deadline.json")
    status = executor.status("e1-r3-train")
    assert status.state == JobState.FAILED
    assert "DeadlineExceeded: Job was active longer than specified deadline" in status.error


def test_retry_after_oom_kill_is_shown_while_running(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    recorded(api, "job_retrying.json", "pods_oomkilled_then_running.json")
    store.put_json(
        PREFIX + "status.json", {"state": "running", "progress": 0.1, "message": "reading examples"}
    )
    status = executor.status("e1-r3-train")
    assert status.state == JobState.RUNNING
    assert status.message == "reading examples (retrying (attempt 2 of 2) after OOMKilled (exit code 137))"


def test_unknown_job_is_not_found(executor: KubernetesExecutor) -> None:
    with pytest.raises(NotFound, match="no Job ml/labelloop-nope"):
        executor.status("nope")


def test_job_removed_after_its_ttl_still_reports_its_result(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    executor.submit(make_spec())
    store.put_json(PREFIX + "result.json", {"model_key": PREFIX + "model/"})
    del api.jobs[NAME]  # ttlSecondsAfterFinished
    assert executor.status("e1-r3-train").state == JobState.SUCCEEDED


def test_cancel_deletes_a_running_job_in_the_background(
    executor: KubernetesExecutor, api: FakeKubernetesApi
) -> None:
    recorded(api, "job_running.json", "pods_running.json")
    executor.cancel("e1-r3-train")
    assert api.calls_to("delete_namespaced_job") == [{"name": NAME, "propagation_policy": "Background"}]
    assert executor.status("e1-r3-train").state == JobState.CANCELLED
    executor.cancel("e1-r3-train")  # gone already: a no-op
    assert len(api.calls_to("delete_namespaced_job")) == 1


def test_cancel_after_the_end_keeps_the_job(executor: KubernetesExecutor, api: FakeKubernetesApi) -> None:
    recorded(api, "job_complete.json")
    executor.cancel("e1-r3-train")
    assert not api.calls_to("delete_namespaced_job") and NAME in api.jobs


def test_cancel_experiment_deletes_all_its_jobs(executor: KubernetesExecutor, api: FakeKubernetesApi) -> None:
    executor.submit(make_spec("e1-r3-train"))
    executor.submit(make_spec("e1-r4-train", output_prefix="experiments/e1/rounds/4/"))
    executor.submit(
        make_spec("e2-r1-train", output_prefix="experiments/e2/rounds/1/", labels={"experiment": "e2"})
    )
    cancelled = executor.cancel_experiment("e1")
    assert sorted(cancelled) == ["e1-r3-train", "e1-r4-train"]
    (call,) = api.calls_to("delete_collection_namespaced_job")
    assert call == {
        "label_selector": "app.kubernetes.io/component=trainer-job,labelloop.dev/experiment=e1,"
        "app.kubernetes.io/instance=labelloop",
        "propagation_policy": "Background",
    }
    assert set(api.jobs) == {"labelloop-e2-r1-train"}
    assert executor.status("e1-r4-train").state == JobState.CANCELLED
    assert executor.cancel_experiment("e1") == []


def test_watch_yields_each_change_until_done(
    executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore
) -> None:
    recorded(api, "job_running.json", "pods_running.json")
    store.put_json(PREFIX + "status.json", {"state": "running", "progress": 0.5, "message": "fitting"})
    result = {"model_key": PREFIX + "model/", "test_accuracy": 0.9}
    events = (FIXTURES / "job_watch_events.jsonl").read_text().splitlines()

    def job_completes() -> list[str]:
        # While the watch is open the Job completes and the job writes its result.
        store.put_json(PREFIX + "result.json", result)
        recorded(api, "job_complete.json")
        return events

    api.on_watch = job_completes
    seen = list(executor.watch("e1-r3-train", timeout=60))
    assert [s.state for s in seen] == [JobState.RUNNING, JobState.SUCCEEDED]
    assert seen[0].progress == 0.5 and seen[1].result == result
    assert api.calls_to("list_namespaced_job")[0]["watch"] is True


def test_status_is_cached_briefly_for_a_polling_trainer(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, tmp_path: Path
) -> None:
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    env = {"LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE)}
    executor = KubernetesExecutor(settings, env=env, batch_api=api, core_api=api, store=store, clock=clock)
    assert executor.reattach  # the trainer keeps in-flight runs across its restarts
    recorded(api, "job_running.json", "pods_running.json")
    assert executor.status("e1-r3-train").state == JobState.RUNNING
    recorded(api, "job_complete.json")
    store.put_json(PREFIX + "result.json", {"model_key": PREFIX + "model/"})
    assert executor.status("e1-r3-train").state == JobState.RUNNING  # within cache_seconds: no API call
    assert len(api.calls_to("read_namespaced_job")) == 1
    clock.now += 2.5
    assert executor.status("e1-r3-train").state == JobState.SUCCEEDED


# Sharded prediction: an Indexed Job for a large pool, merged once it completes -------------------

PREDICT_NAME = "labelloop-e1-r3-predict"
MODEL = "experiments/e1/rounds/2/model/"


@pytest.fixture
def sharding_executor(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, tmp_path: Path
) -> KubernetesExecutor:
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    env = {"LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE), "LABELLOOP_PREDICT_SHARD_ROWS": "40"}
    return KubernetesExecutor(
        settings, env=env, batch_api=api, core_api=api, store=store, clock=clock, cache_seconds=0
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
    monkeypatch: pytest.MonkeyPatch,
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
    merges: list[int] = []
    real_merge = sharding.merge_shards

    def counting_merge(*args: Any, **kwargs: Any) -> dict[str, Any]:
        merges.append(1)
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(sharding, "merge_shards", counting_merge)
    status = sharding_executor.status("e1-r3-predict")
    assert status.state == JobState.SUCCEEDED, status.error
    result = status.result
    assert result == store.get_json(PREFIX + "result.json")
    assert (result["n_pool"], result["n_test"], result["shards"]) == (100, 20, 3)
    assert result["model_key"] == "runs/t/model/"
    for split, (probs, ids) in full.items():
        np.testing.assert_array_equal(store.get_array(result[f"{split}_probabilities_key"]), probs)
        assert store.get_json(result[f"{split}_example_ids_key"]) == ids
    assert sharding_executor.status("e1-r3-predict") == status
    del api.jobs[PREDICT_NAME]  # ttlSecondsAfterFinished
    assert sharding_executor.status("e1-r3-predict") == status
    assert merges == [1]


def test_small_pools_training_and_disabled_sharding_stay_one_job(
    sharding_executor: KubernetesExecutor, api: FakeKubernetesApi, store: LocalStore, tmp_path: Path
) -> None:
    big = predict_spec(store, n_pool=100)
    # Training on the same 100-row pool: always one Job.
    sharding_executor.submit(
        make_spec("e1-r4-train", output_prefix="experiments/e1/rounds/4/", examples_key=big.examples_key)
    )
    small = predict_spec(store, n_pool=40, dataset="small")  # exactly one shard's worth
    sharding_executor.submit(small)
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    env = {"LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE), "LABELLOOP_PREDICT_SHARD_ROWS": "0"}
    disabled = KubernetesExecutor(settings, env=env, batch_api=api, core_api=api, store=store)
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
            settings,
            env={**env, "LABELLOOP_PREDICT_SHARD_ROWS": "lots"},
            batch_api=api,
            core_api=api,
            store=store,
        )


def test_pool_size_is_counted_in_the_examples_without_dataset_json(
    sharding_executor: KubernetesExecutor, store: LocalStore
) -> None:
    spec = predict_spec(store, n_pool=100)
    assert sharding_executor._pool_rows(spec) == 100  # dataset.json's pool_count
    store.delete("datasets/digits/dataset.json")
    assert sharding_executor._pool_rows(spec) == 100  # the split column of examples.parquet
    store.delete(spec.examples_key)
    assert sharding_executor._pool_rows(spec) is None  # the job itself will report the missing table


def test_shard_count_and_parallelism_cap() -> None:
    assert [shard_count(n, 40) for n in (0, 40, 41, 80, 81)] == [1, 1, 2, 2, 3]
    assert shard_count(10**9, 0) == 1 and shard_count(10**12, 1) == 100_000


def test_parallelism_comes_from_the_env(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, tmp_path: Path
) -> None:
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    env = {
        "LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE),
        "LABELLOOP_PREDICT_SHARD_ROWS": "10",
        "LABELLOOP_PREDICT_SHARD_PARALLELISM": "4",
    }
    executor = KubernetesExecutor(settings, env=env, batch_api=api, core_api=api, store=store, clock=clock)
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
