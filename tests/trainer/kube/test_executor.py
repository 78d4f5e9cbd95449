"""KubernetesExecutor against FakeKubernetesApi (kube_double.py), a double of BatchV1Api/CoreV1Api that
answers with recorded API responses: the JSON files in fixtures/ are hand-written Job, PodList and
Status objects in exactly the shape the API server sends (they validate against the Kubernetes schema
themselves, see test_manifests.py). Submitting, reading the state, cancelling, reattaching.
"""

from __future__ import annotations

import time

import pytest
from labelloop.core.config import Settings
from labelloop.core.errors import AlreadyExists, NotFound
from labelloop.core.storage import LocalStore
from labelloop.trainer import operations as ops
from labelloop.trainer.catalog import StoreCatalog
from labelloop.trainer.contract import JobSpec, JobState
from labelloop.trainer.executors.kubernetes import KubernetesExecutor
from labelloop.trainer.runs import Trainer

from tests.trainer.kube.jobs import NAME, PREFIX, T0, Clock, make_spec, recorded, template_env, validate
from tests.trainer.kube.kube_double import FakeKubernetesApi


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


def test_status_is_cached_briefly_for_a_polling_trainer(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, settings: Settings
) -> None:
    executor = KubernetesExecutor(
        settings, store, env=template_env(), batch_api=api, core_api=api, clock=clock
    )
    recorded(api, "job_running.json", "pods_running.json")
    assert executor.status("e1-r3-train").state == JobState.RUNNING
    recorded(api, "job_complete.json")
    store.put_json(PREFIX + "result.json", {"model_key": PREFIX + "model/"})
    assert executor.status("e1-r3-train").state == JobState.RUNNING  # within cache_seconds: no API call
    assert len(api.calls_to("read_namespaced_job")) == 1
    clock.now += 2.5
    assert executor.status("e1-r3-train").state == JobState.SUCCEEDED


# After a trainer restart ----------------------------------------------------------------------------


def in_flight(store: LocalStore, spec: JobSpec | None) -> ops.OperationRecord:
    """An operation a previous trainer saved while its job ran (an old record may lack the spec)."""
    record = ops.OperationRecord(
        id=spec.job_id if spec else "op-old",
        kind="train",
        request_id="",
        state=JobState.RUNNING,
        spec=spec.to_dict() if spec else {},
    )
    ops.save(store, record)
    return record


def test_a_restarted_trainer_reattaches_to_its_jobs(
    api: FakeKubernetesApi, store: LocalStore, clock: Clock, settings: Settings
) -> None:
    running = in_flight(store, make_spec())
    # Finished while no trainer looked, then removed by ttlSecondsAfterFinished: only its files are left.
    gone_spec = make_spec("e1-r4-train", output_prefix="experiments/e1/rounds/4/")
    gone = in_flight(store, gone_spec)
    store.put_json("experiments/e1/rounds/4/result.json", {"model_key": "experiments/e1/rounds/4/model/"})
    old = in_flight(store, None)
    recorded(api, "job_running.json", "pods_running.json")
    store.put_json(PREFIX + "status.json", {"state": "running", "progress": 0.5, "message": "fitting"})

    executor = KubernetesExecutor(
        settings, store, env=template_env(), batch_api=api, core_api=api, clock=clock, cache_seconds=0
    )
    trainer = Trainer(store, StoreCatalog(store), executor, poll_seconds=0.05)
    try:
        deadline = time.monotonic() + 10

        def synced() -> bool:  # the tracker syncs operations in no set order: wait for both
            current = trainer.get(running.name)
            return trainer.get(gone.name).state == JobState.SUCCEEDED and current.message == "fitting"

        while not synced() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert trainer.get(gone.name).result == {"model_key": "experiments/e1/rounds/4/model/"}
        current = trainer.get(running.name)
        assert (current.state, current.message) == (JobState.RUNNING, "fitting"), current
        failed = trainer.get(old.name)
        assert failed.state == JobState.FAILED and "restarted" in failed.error_message
        # A reattached job is cancelled like one this trainer started.
        assert trainer.cancel(running.name).state == JobState.CANCELLED
        assert NAME not in api.jobs
    finally:
        trainer.close()


def test_reattach_is_what_finds_a_removed_job_again(
    api: FakeKubernetesApi, store: LocalStore, settings: Settings
) -> None:
    spec = make_spec()
    store.put_json(PREFIX + "result.json", {"model_key": PREFIX + "model/"})
    fresh = KubernetesExecutor(settings, store, env=template_env(), batch_api=api, core_api=api)
    with pytest.raises(NotFound):
        fresh.status(spec.job_id)  # no Job, and nothing tells this executor where its files are
    assert fresh.reattach(spec) is True
    assert fresh.status(spec.job_id).result == {"model_key": PREFIX + "model/"}
