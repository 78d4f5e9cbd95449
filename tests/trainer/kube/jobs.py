"""What the Kubernetes executor tests share: a chart-like job template, job specs, schema validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
from kubernetes.client import ApiClient
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.executors.kubernetes.template import JobTemplate

from tests.trainer.kube.kube_double import FakeKubernetesApi, fixture

KUBE_VERSIONS = ("1.30", "1.37")
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()  # creationTimestamp in the fixtures
NAME = "labelloop-e1-r3-train"  # the Job of make_spec()'s job id, as in the fixtures
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


def template_env(**extra: str) -> dict[str, str]:
    """The executor's environment: the template, as the chart sets it, plus `extra`."""
    return {"LABELLOOP_JOB_TEMPLATE": json.dumps(TEMPLATE), **extra}


def to_manifest(obj: Any) -> dict[str, Any]:
    """A client model as the JSON the API server receives (the client's own serializer)."""
    return ApiClient().sanitize_for_serialization(obj)


def validate(manifest: dict[str, Any]) -> None:
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def recorded(api: FakeKubernetesApi, job: str, pods: str | None = None, name: str = NAME) -> None:
    """The cluster now holds this recorded Job (and PodList)."""
    api.jobs[name] = fixture(job)
    if pods:
        api.pods[name] = fixture(pods)


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now
