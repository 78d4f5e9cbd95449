"""End to end against a real Kubernetes cluster (`make e2e-cluster`): the KubernetesExecutor's Jobs on a
live API server. Runs only with a kubeconfig (KUBECONFIG or ~/.kube/config) whose API server answers;
otherwise every test here is skipped with the reason.

Each test works in a fresh namespace `labelloop-e2e-<random>` and deletes it afterwards. No LabelLoop
image is needed: the Jobs run a stock Python image (LABELLOOP_E2E_JOB_IMAGE overrides it), where the
job module is missing, so a run fails in a known way; that is what the status logic is checked on.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient
from labelloop.core.config import Settings, StorageConfig
from labelloop.core.storage import LocalStore
from labelloop.trainer.contract import JobKind, JobSpec, JobState
from labelloop.trainer.executors.kubernetes import KubernetesExecutor
from labelloop.trainer.executors.kubernetes.manifests import build_job

pytestmark = pytest.mark.cluster

JOB_IMAGE = os.environ.get("LABELLOOP_E2E_JOB_IMAGE", "python:3.11.14-slim-bookworm")


def _kubeconfig() -> str | None:
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep) if os.environ.get("KUBECONFIG") else []
    paths = paths or [str(Path.home() / ".kube" / "config")]
    return next((p for p in paths if p and Path(p).is_file()), None)


@pytest.fixture(scope="module")
def kube() -> Any:
    """The kubernetes client module, configured for a reachable cluster; skips otherwise."""
    path = _kubeconfig()
    if path is None:
        pytest.skip("no kubeconfig (KUBECONFIG or ~/.kube/config): the cluster e2e tests need a cluster")
    from kubernetes import client, config

    try:
        config.load_kube_config(config_file=path)
        version = client.VersionApi().get_code(_request_timeout=5)
    except Exception as error:
        pytest.skip(f"kubeconfig {path} found, but its API server does not answer: {error}")
    print(f"cluster: Kubernetes {version.git_version} from {path}")
    return client


@pytest.fixture
def namespace(kube: Any) -> Iterator[str]:
    name = f"labelloop-e2e-{uuid.uuid4().hex[:8]}"
    core = kube.CoreV1Api()
    core.create_namespace(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def executor(kube: Any, namespace: str, tmp_path: Path, image: str = JOB_IMAGE) -> KubernetesExecutor:
    template = {
        "image": image,
        "namespace": namespace,
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
        "ttlSecondsAfterFinished": 600,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "labels": {"app.kubernetes.io/instance": "e2e"},
        "env": [{"name": "LABELLOOP_LOG_FORMAT", "value": "text"}],
        "stuckSeconds": 900,
    }
    settings = Settings(storage=StorageConfig(backend="local", root=tmp_path / "store"))
    return KubernetesExecutor(
        settings,
        LocalStore(tmp_path / "store"),
        env={"LABELLOOP_JOB_TEMPLATE": json.dumps(template)},
        batch_api=kube.BatchV1Api(),
        core_api=kube.CoreV1Api(),
        cache_seconds=0,
    )


def spec(job_id: str, experiment: str = "e2e") -> JobSpec:
    return JobSpec(
        job_id=job_id,
        kind=JobKind.TRAIN,
        examples_key="datasets/d/examples.parquet",
        output_prefix=f"experiments/{experiment}/rounds/1/",
        classes=["a", "b"],
        config={"num_gpus": 0},
        labels={"experiment": experiment, "round": "1"},
    )


def wait_for(ex: KubernetesExecutor, job_id: str, done: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    status = ex.status(job_id)
    while not done(status) and time.monotonic() < deadline:
        time.sleep(2)
        status = ex.status(job_id)
    return status


def test_api_server_accepts_the_job(kube: Any, namespace: str, tmp_path: Path) -> None:
    """Server-side dry run: schema, defaulting and admission (restricted Pod Security) accept the Job."""
    ex = executor(kube, namespace, tmp_path)
    job = build_job(spec("dry-run"), "experiments/e2e/rounds/1/spec.json", ex.template)
    created = kube.BatchV1Api().create_namespaced_job(namespace, job, dry_run="All")
    assert created.metadata.name == "labelloop-dry-run"
    container = created.spec.template.spec.containers[0]
    assert ApiClient().sanitize_for_serialization(container.security_context)["readOnlyRootFilesystem"]


def test_a_failing_run_reports_kubernetes_reason_and_pod_exit(
    kube: Any, namespace: str, tmp_path: Path
) -> None:
    ex = executor(kube, namespace, tmp_path)
    ex.submit(spec("fails"))
    status = wait_for(ex, "fails", lambda s: s.state.done)
    assert status.state == JobState.FAILED, status
    assert "BackoffLimitExceeded" in status.error, status.error
    assert "exit code 1" in status.error, status.error
    ex.cancel("fails")  # finished: cancelling keeps the Job (and its logs) until its TTL
    job = kube.BatchV1Api().read_namespaced_job("labelloop-fails", namespace)
    assert job.metadata.deletion_timestamp is None


def test_an_image_that_cannot_be_pulled_is_pending_and_can_be_cancelled(
    kube: Any, namespace: str, tmp_path: Path
) -> None:
    ex = executor(kube, namespace, tmp_path, image="registry.invalid/labelloop-e2e:missing")
    ex.submit(spec("no-image"))
    status = wait_for(ex, "no-image", lambda s: "Err" in s.message or "BackOff" in s.message, timeout=180)
    assert status.state == JobState.PENDING
    assert "ErrImagePull" in status.message or "ImagePullBackOff" in status.message, status.message
    ex.cancel("no-image")
    assert ex.status("no-image").state == JobState.CANCELLED
    jobs = kube.BatchV1Api().list_namespaced_job(namespace).items
    assert all(j.metadata.deletion_timestamp for j in jobs)  # gone, or on its way out
