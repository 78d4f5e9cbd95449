"""The Kubernetes objects of a trainer job: labels, names, and the batch/v1 Job that runs a JobSpec.

Building a Job is a pure function (build_job), so it is testable without a cluster. A large
PREDICT runs as an Indexed Job of one pod per shard (build_sharded_prediction_job).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from kubernetes import client

from labelloop.core.errors import InvalidArgument
from labelloop.trainer import shards as sharding
from labelloop.trainer.contract import JobKind, JobSpec
from labelloop.trainer.executors.kubernetes.template import JobTemplate

# Set on the pods of a sharded (Indexed) prediction Job; Kubernetes adds JOB_COMPLETION_INDEX itself.
SHARD_COUNT_ENV = sharding.SHARD_COUNT_ENV
SHARD_PREFIX_ENV = sharding.SHARD_PREFIX_ENV

LABEL_DOMAIN = "labelloop.dev"
EXPERIMENT_LABEL = f"{LABEL_DOMAIN}/experiment"
ROUND_LABEL = f"{LABEL_DOMAIN}/round"
JOB_ID_LABEL = f"{LABEL_DOMAIN}/job-id"
KIND_LABEL = f"{LABEL_DOMAIN}/kind"
JOB_ID_ANNOTATION = f"{LABEL_DOMAIN}/job-id"
OUTPUT_PREFIX_ANNOTATION = f"{LABEL_DOMAIN}/output-prefix"
COMPONENT = "trainer-job"
MANAGED_BY = "labelloop-trainer"
CONTAINER = "job"

MAX_NAME = 63  # Job names become a pod label value (job-name), so they are DNS-1123 labels
MAX_INDEXED_COMPLETIONS = 100_000  # the API server's limit for completionMode Indexed

_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9._-]+")
_NAME_BAD = re.compile(r"[^a-z0-9-]+")


def label_value(value: str) -> str:
    """Any string as a valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends.

    Values that had to change keep a short hash, so two different experiments never share a value.
    """
    clean = _LABEL_VALUE_BAD.sub("-", value).strip("-._")
    if clean == value and len(clean) <= MAX_NAME:
        return clean
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{clean[: MAX_NAME - 9].rstrip('-._')}-{digest}".strip("-._")


def job_name(job_id: str, prefix: str = "labelloop") -> str:
    """The Job's name for a job id: deterministic, so status() and cancel() need no lookup table."""
    slug = _NAME_BAD.sub("-", job_id.lower()).strip("-")
    name = f"{prefix}-{slug}" if slug else prefix
    if name == f"{prefix}-{job_id}" and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"


def shard_count(pool_rows: int, rows_per_shard: int) -> int:
    """Shards for a pool: 1 (an ordinary Job) unless rows_per_shard > 0 and the pool is larger."""
    if rows_per_shard <= 0 or pool_rows <= rows_per_shard:
        return 1
    return min(math.ceil(pool_rows / rows_per_shard), MAX_INDEXED_COMPLETIONS)


def folder(output_prefix: str) -> str:
    """An output prefix as a folder key: exactly one trailing slash."""
    return output_prefix.rstrip("/") + "/"


def gpus_for(spec: JobSpec, template: JobTemplate) -> int:
    """GPUs to request: TrainerConfig.num_gpus > 0 asks for that many, -1 for the cluster's default
    (the pod sees only what it was given, so "all visible" is exactly that), 0 for none."""
    requested = int(spec.config.get("num_gpus", 0) or 0)
    if requested < 0:
        return template.gpus
    return requested


def job_labels(spec: JobSpec, template: JobTemplate) -> dict[str, str]:
    labels = {k: label_value(str(v)) for k, v in template.labels.items()}
    labels.update(
        {
            "app.kubernetes.io/name": labels.get("app.kubernetes.io/name", "labelloop"),
            "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/part-of": "labelloop",
            "app.kubernetes.io/managed-by": MANAGED_BY,
            JOB_ID_LABEL: label_value(spec.job_id),
            KIND_LABEL: label_value(str(spec.kind)),
        }
    )
    if spec.labels.get("experiment"):
        labels[EXPERIMENT_LABEL] = label_value(spec.labels["experiment"])
    if spec.labels.get("round") not in (None, ""):
        labels[ROUND_LABEL] = label_value(str(spec.labels["round"]))
    return labels


def _resources(spec: JobSpec, template: JobTemplate) -> dict[str, Any]:
    resources = json.loads(json.dumps(template.resources))  # a deep copy: the template is shared
    gpus = gpus_for(spec, template)
    for part in ("requests", "limits"):
        resources.setdefault(part, {})
        resources[part].pop(template.gpu_resource, None)
    if gpus > 0:
        # Extended resources are requested through limits (requests default to the same).
        resources["limits"][template.gpu_resource] = str(gpus)
    return {k: v for k, v in resources.items() if v}


def _volumes(template: JobTemplate) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # The root filesystem is read-only: scratch space, the cache and /dev/shm are emptyDirs.
    volumes = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": template.shm_size}},
        *template.volumes,
    ]
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": template.cache_dir},
        {"name": "dshm", "mountPath": "/dev/shm"},
        *template.volume_mounts,
    ]
    return volumes, mounts


def build_job(
    spec: JobSpec,
    spec_key: str,
    template: JobTemplate,
    *,
    extra_env: list[dict[str, Any]] | None = None,
    job_spec_fields: dict[str, Any] | None = None,
) -> client.V1Job:
    """The batch/v1 Job that runs one JobSpec. Pure: no API calls.

    `job_spec_fields` (Kubernetes spelling) change the Job's spec; a None value removes a field.
    """
    labels = job_labels(spec, template)
    annotations = {
        **template.annotations,
        JOB_ID_ANNOTATION: spec.job_id,
        OUTPUT_PREFIX_ANNOTATION: folder(spec.output_prefix),
    }
    volumes, mounts = _volumes(template)
    env = [
        *(e for e in template.env if e.get("name") not in (SHARD_COUNT_ENV, SHARD_PREFIX_ENV)),
        *(extra_env or []),
    ]
    # Kubernetes JSON throughout; the client's model validates it (an unknown field is an error).
    container = {
        "name": CONTAINER,
        "image": template.image,
        "imagePullPolicy": template.image_pull_policy,
        "command": ["python", "-m", "labelloop.trainer.job", "--spec-json", spec_key],
        "env": env,
        "resources": _resources(spec, template) or None,
        "securityContext": template.security_context,
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",  # the traceback shows in the pod status
    }
    pod_spec = {
        "containers": [_present(container)],
        "restartPolicy": "Never",  # the Job's backoffLimit retries with a fresh pod
        "serviceAccountName": template.service_account_name or None,
        "automountServiceAccountToken": False,  # the job talks to the object store, never the API
        "securityContext": template.pod_security_context,
        "nodeSelector": template.node_selector or None,
        "tolerations": template.tolerations or None,
        "affinity": template.affinity or None,
        "priorityClassName": template.priority_class_name or None,
        "imagePullSecrets": [{"name": n} for n in template.image_pull_secrets] or None,
        "volumes": volumes,
        "enableServiceLinks": False,  # no docker-link env vars for every Service in the namespace
    }
    job_spec = {
        "backoffLimit": template.backoff_limit,
        "activeDeadlineSeconds": template.active_deadline_seconds,
        "ttlSecondsAfterFinished": template.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": _present(pod_spec)},
        **(job_spec_fields or {}),
    }
    metadata = {
        "name": job_name(spec.job_id, template.name_prefix),
        "namespace": template.namespace or None,
        "labels": labels,
        "annotations": annotations,
    }
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _present(metadata),
        "spec": _present(job_spec),
    }
    return client.V1Job.model_validate(manifest)


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields that are set: None means "leave it to the API server's default"."""
    return {k: v for k, v in fields.items() if v is not None}


def build_sharded_prediction_job(
    spec: JobSpec, spec_key: str, template: JobTemplate, shards: int, parallelism: int | None = None
) -> client.V1Job:
    """An Indexed Job predicting a large pool in `shards` pieces, `parallelism` pods at a time.

    Pod i (JOB_COMPLETION_INDEX, set by Kubernetes) predicts its share of the rows and writes them
    under `{output_prefix}shards/` (shards.py), as LABELLOOP_SHARD_COUNT tells the job runner to.
    """
    if spec.kind != JobKind.PREDICT:
        raise InvalidArgument(f"only PREDICT jobs can be sharded, not {spec.kind}")
    if not 1 <= shards <= MAX_INDEXED_COMPLETIONS:
        raise InvalidArgument(f"shards must be 1..{MAX_INDEXED_COMPLETIONS}, not {shards}")
    parallelism = shards if parallelism is None else parallelism
    if not 1 <= parallelism <= shards:
        raise InvalidArgument(f"parallelism must be 1..{shards} (the shard count), not {parallelism}")
    if not spec.model_key:
        raise InvalidArgument("a sharded prediction needs model_key: the folder of a saved predictor")
    return build_job(
        spec,
        spec_key,
        template,
        extra_env=[
            {"name": SHARD_COUNT_ENV, "value": str(shards)},
            {"name": SHARD_PREFIX_ENV, "value": sharding.shards_prefix(spec.output_prefix)},
        ],
        job_spec_fields={
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": parallelism,
            # Retries count per shard; one shard out of retries fails the whole Job at once.
            "backoffLimit": None,
            "backoffLimitPerIndex": template.backoff_limit,
            "maxFailedIndexes": 0,
        },
    )
