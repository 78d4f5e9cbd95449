"""Runs trainer jobs as Kubernetes batch/v1 Jobs (LABELLOOP_TRAINER_EXECUTOR=kubernetes).

submit() writes the JobSpec to the object store at `{output_prefix}spec.json` and creates a Job
running `python -m labelloop.trainer.job --spec-json <that key>`; the pod needs only the object store.
status() reads the Job's conditions, its pods' waiting/terminated reasons (image pulls, OOM kills,
unschedulable GPUs) and the job's own `status.json` / `result.json`. cancel() deletes the Job.

Everything about the pod comes from one JSON env var written by the Helm chart,
LABELLOOP_JOB_TEMPLATE (image, GPUs, scheduling, env with secret references, security context);
LABELLOOP_JOB_IMAGE, LABELLOOP_JOB_NAMESPACE and LABELLOOP_JOB_GPUS override single fields.
Building the Job object is a pure function (build_job), so it is testable without a cluster.

A PREDICT spec whose pool has more than LABELLOOP_PREDICT_SHARD_ROWS rows (default 200000; 0 turns
sharding off) runs as an Indexed Job of ceil(pool / rows) pods, each predicting one shard
(shards.py); once the Job completes, status() merges the shards into the ordinary result, once.
LABELLOOP_PREDICT_SHARD_PARALLELISM caps how many of its pods run at a time (default: all).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes import watch as kube_watch

from labelloop.core.config import Settings
from labelloop.core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from labelloop.core.storage import ObjectStore, open_store
from labelloop.trainer import shards as sharding
from labelloop.trainer.executors.base import Executor, JobKind, JobSpec, JobState, JobStatus

log = logging.getLogger(__name__)

TEMPLATE_ENV = "LABELLOOP_JOB_TEMPLATE"
IMAGE_ENV = "LABELLOOP_JOB_IMAGE"
NAMESPACE_ENV = "LABELLOOP_JOB_NAMESPACE"
GPUS_ENV = "LABELLOOP_JOB_GPUS"
# Set on the pods of a sharded (Indexed) prediction Job; Kubernetes adds JOB_COMPLETION_INDEX itself.
SHARD_COUNT_ENV = sharding.SHARD_COUNT_ENV
SHARD_PREFIX_ENV = sharding.SHARD_PREFIX_ENV
# Rows of the pool per shard of a PREDICT run (0: never shard), and pods of one such Job at a time.
PREDICT_SHARD_ROWS_ENV = "LABELLOOP_PREDICT_SHARD_ROWS"
PREDICT_SHARD_PARALLELISM_ENV = "LABELLOOP_PREDICT_SHARD_PARALLELISM"
DEFAULT_PREDICT_SHARD_ROWS = 200_000
# Written at submit next to the shards: how many there are, so a merge is possible after the Job's TTL.
SHARD_PLAN_FILE = "plan.json"
MAX_SHARD_ERRORS_READ = 20  # shard status files read to explain a failed sharded Job, at most

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
POD_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

MAX_NAME = 63  # Job names become a pod label value (job-name), so they are DNS-1123 labels
MAX_INDEXED_COMPLETIONS = 100_000  # the API server's limit for completionMode Indexed

# Waiting reasons that never resolve by themselves: fail at once rather than hold a GPU until the deadline.
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
# Waiting reasons that may resolve (a registry hiccup, a Secret created late); fail after stuck_seconds.
STUCK_WAITING = {"ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CreateContainerError"}

# Same hardening as the chart's containers (restricted Pod Security Standard).
DEFAULT_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

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


def shard_key(output_prefix: str, index: int) -> str:
    """Where shard `index` of a sharded prediction writes its (pool) probabilities."""
    return sharding.probabilities_key(sharding.shards_prefix(output_prefix), index, "pool")


def shard_count(pool_rows: int, rows_per_shard: int) -> int:
    """Shards for a pool: 1 (an ordinary Job) unless rows_per_shard > 0 and the pool is larger."""
    if rows_per_shard <= 0 or pool_rows <= rows_per_shard:
        return 1
    return min(math.ceil(pool_rows / rows_per_shard), MAX_INDEXED_COMPLETIONS)


def _prefix(output_prefix: str) -> str:
    return output_prefix.rstrip("/") + "/"


# What the pods look like ---------------------------------------------------------------------------

# JSON keys of LABELLOOP_JOB_TEMPLATE (Kubernetes spelling) -> JobTemplate fields.
_TEMPLATE_KEYS = {
    "image": "image",
    "imagePullPolicy": "image_pull_policy",
    "imagePullSecrets": "image_pull_secrets",
    "namespace": "namespace",
    "namePrefix": "name_prefix",
    "serviceAccountName": "service_account_name",
    "gpus": "gpus",
    "gpuResource": "gpu_resource",
    "resources": "resources",
    "nodeSelector": "node_selector",
    "tolerations": "tolerations",
    "affinity": "affinity",
    "priorityClassName": "priority_class_name",
    "backoffLimit": "backoff_limit",
    "activeDeadlineSeconds": "active_deadline_seconds",
    "ttlSecondsAfterFinished": "ttl_seconds_after_finished",
    "labels": "labels",
    "annotations": "annotations",
    "env": "env",
    "podSecurityContext": "pod_security_context",
    "securityContext": "security_context",
    "cacheDir": "cache_dir",
    "shmSize": "shm_size",
    "volumes": "volumes",
    "volumeMounts": "volume_mounts",
    "stuckSeconds": "stuck_seconds",
}


@dataclass(frozen=True)
class JobTemplate:
    """Everything about a trainer Job's pod that is not in the JobSpec (plain Kubernetes JSON fragments)."""

    image: str
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: list[str] = field(default_factory=list)
    namespace: str = ""  # empty: the trainer's own namespace
    name_prefix: str = "labelloop"
    service_account_name: str = ""
    # GPUs for a run that asks for all visible GPUs (TrainerConfig.num_gpus = -1).
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    resources: dict[str, Any] = field(default_factory=dict)  # V1ResourceRequirements
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class_name: str = ""
    backoff_limit: int = 1
    active_deadline_seconds: int = 6 * 3600
    ttl_seconds_after_finished: int = 24 * 3600
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    env: list[dict[str, Any]] = field(default_factory=list)  # V1EnvVar, secrets as secretKeyRef
    pod_security_context: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_POD_SECURITY))
    security_context: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CONTAINER_SECURITY))
    cache_dir: str = "/var/cache/labelloop"
    shm_size: str = "2Gi"  # PyTorch data loader workers share batches through /dev/shm
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    stuck_seconds: float = 900.0

    @classmethod
    def from_json(cls, text: str) -> JobTemplate:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidArgument(f"{TEMPLATE_ENV} is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise InvalidArgument(f"{TEMPLATE_ENV} must be a JSON object")
        unknown = sorted(set(data) - set(_TEMPLATE_KEYS))
        if unknown:
            raise InvalidArgument(
                f"{TEMPLATE_ENV} has unknown keys {unknown}; known: {sorted(_TEMPLATE_KEYS)}"
            )
        if not data.get("image"):
            raise InvalidArgument(f"{TEMPLATE_ENV} needs an image")
        values = {_TEMPLATE_KEYS[k]: v for k, v in data.items() if v is not None}
        return cls(**values)

    @classmethod
    def from_env(cls, env: dict[str, str], settings: Settings) -> JobTemplate:
        """The chart's template with single-field overrides; without a template, a bare one (for dev)."""
        if env.get(TEMPLATE_ENV):
            template = cls.from_json(env[TEMPLATE_ENV])
        elif env.get(IMAGE_ENV):
            log.warning(
                "%s is not set: trainer Jobs get the object-store credentials as plain env values",
                TEMPLATE_ENV,
            )
            plain = {k: v for k, v in settings.to_env().items() if k != "LABELLOOP_TRAINER_EXECUTOR"}
            template = cls(
                image=env[IMAGE_ENV],
                env=[{"name": k, "value": v} for k, v in sorted(plain.items())],
                cache_dir=str(settings.cache_dir),
            )
        else:
            raise InvalidArgument(
                f"LABELLOOP_TRAINER_EXECUTOR=kubernetes needs {TEMPLATE_ENV} (the Helm chart sets it) "
                f"or at least {IMAGE_ENV}"
            )
        changes: dict[str, Any] = {}
        if env.get(IMAGE_ENV):
            changes["image"] = env[IMAGE_ENV]
        if env.get(NAMESPACE_ENV):
            changes["namespace"] = env[NAMESPACE_ENV]
        if env.get(GPUS_ENV):
            changes["gpus"] = int(env[GPUS_ENV])
        return cls(**{**{f.name: getattr(template, f.name) for f in fields(cls)}, **changes})


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
    """The batch/v1 Job that runs one JobSpec. Pure: no API calls."""
    labels = job_labels(spec, template)
    annotations = {
        **template.annotations,
        JOB_ID_ANNOTATION: spec.job_id,
        OUTPUT_PREFIX_ANNOTATION: _prefix(spec.output_prefix),
    }
    volumes, mounts = _volumes(template)
    env = [
        *(e for e in template.env if e.get("name") not in (SHARD_COUNT_ENV, SHARD_PREFIX_ENV)),
        *(extra_env or []),
    ]
    container = client.V1Container(
        name=CONTAINER,
        image=template.image,
        image_pull_policy=template.image_pull_policy,
        command=["python", "-m", "labelloop.trainer.job", "--spec-json", spec_key],
        env=env,
        resources=_resources(spec, template) or None,
        security_context=template.security_context,
        volume_mounts=mounts,
        termination_message_policy="FallbackToLogsOnError",  # the traceback shows in the pod status
    )
    pod_spec = client.V1PodSpec(
        containers=[container],
        restart_policy="Never",  # the Job's backoffLimit retries with a fresh pod
        service_account_name=template.service_account_name or None,
        automount_service_account_token=False,  # the job talks to the object store, never the API
        security_context=template.pod_security_context,
        node_selector=template.node_selector or None,
        tolerations=template.tolerations or None,
        affinity=template.affinity or None,
        priority_class_name=template.priority_class_name or None,
        image_pull_secrets=[{"name": n} for n in template.image_pull_secrets] or None,
        volumes=volumes,
        enable_service_links=False,  # no docker-link env vars for every Service in the namespace
    )
    job_spec = {
        "backoff_limit": template.backoff_limit,
        "active_deadline_seconds": template.active_deadline_seconds,
        "ttl_seconds_after_finished": template.ttl_seconds_after_finished,
        "template": client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels=labels, annotations=annotations), spec=pod_spec
        ),
        **(job_spec_fields or {}),
    }
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(
            name=job_name(spec.job_id, template.name_prefix),
            namespace=template.namespace or None,
            labels=labels,
            annotations=annotations,
        ),
        spec=client.V1JobSpec(**{k: v for k, v in job_spec.items() if v is not None}),
    )


def build_sharded_prediction_job(
    spec: JobSpec, spec_key: str, template: JobTemplate, shards: int, parallelism: int | None = None
) -> client.V1Job:
    """An Indexed Job predicting a large pool in `shards` pieces, `parallelism` pods at a time.

    Pod i (JOB_COMPLETION_INDEX, set by Kubernetes) predicts its share of the rows and writes
    shard_key(output_prefix, i). The job runner has to honour LABELLOOP_SHARD_COUNT for this.
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
            "completion_mode": "Indexed",
            "completions": shards,
            "parallelism": parallelism,
            # Retries count per shard; one shard out of retries fails the whole Job at once.
            "backoff_limit": None,
            "backoff_limit_per_index": template.backoff_limit,
            "max_failed_indexes": 0,
        },
    )


def to_manifest(obj: Any) -> dict[str, Any]:
    """A client model as the JSON the API server receives."""
    return client.ApiClient().sanitize_for_serialization(obj)


# Reading a Job's state ------------------------------------------------------------------------------


@dataclass
class PodReport:
    """What the pods of a Job say beyond the Job's own status."""

    running: bool = False
    waiting: str = ""  # e.g. "unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    fatal: str = ""  # a waiting reason that will not resolve by itself (or has been stuck too long)
    last_termination: str = ""  # e.g. "OOMKilled (exit code 137)"


def _age_seconds(start: datetime | None, now: float) -> float:
    return now - start.timestamp() if start is not None else 0.0


def _termination(state: Any) -> str:
    term = state.terminated if state is not None else None
    if term is None:
        return ""
    text = f"{term.reason or 'Terminated'} (exit code {term.exit_code})"
    if term.message and term.reason != "OOMKilled":
        text += f": {term.message.strip()[-500:]}"
    return text


def diagnose_pods(pods: list[Any], now: float, stuck_seconds: float) -> PodReport:
    """Summarises a Job's pods (V1Pod), newest last, into what a person needs to know."""
    report = PodReport()
    ordered = sorted(pods, key=lambda p: p.metadata.creation_timestamp.timestamp())
    for pod in ordered:
        status = pod.status
        if status is None:
            continue
        containers = [*(status.init_container_statuses or []), *(status.container_statuses or [])]
        if status.phase == "Succeeded":
            continue
        if status.phase == "Failed":  # an earlier attempt: only how it ended matters
            for cs in containers:
                report.last_termination = _termination(cs.state) or report.last_termination
            if status.reason:  # e.g. Evicted, DeadlineExceeded: the pod, not a container, ended
                report.last_termination = f"{status.reason}: {status.message or ''}".strip(": ")
            continue
        age = _age_seconds(pod.metadata.creation_timestamp, now)
        for condition in status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                report.waiting = f"unschedulable: {condition.message or condition.reason}"
        for cs in containers:
            if cs.state is None:
                continue
            if cs.state.running is not None and status.phase == "Running":
                report.running = True
            waiting = cs.state.waiting
            if waiting is not None and waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
                text = f"{waiting.reason}: {waiting.message or ''}".strip(": ")
                report.waiting = text
                if waiting.reason in FATAL_WAITING:
                    report.fatal = text
                elif waiting.reason in STUCK_WAITING and age > stuck_seconds:
                    report.fatal = f"{text} (stuck for {age:.0f} s)"
    return report


def _finished(job: client.V1Job) -> bool:
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def _condition(job: client.V1Job, kind: str) -> Any:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def job_status(
    job: client.V1Job,
    pod_report: PodReport,
    progress: dict[str, Any] | None,
    result: dict[str, Any] | None,
) -> JobStatus:
    """JobStatus from the Job, what its pods say (diagnose_pods), and the job's own status.json and
    result.json (None when absent). Pure, so each branch is tested against recorded API objects.
    """
    progress = progress or {}
    job_error = progress.get("error", "") if progress.get("state") == "failed" else ""
    status = job.status

    complete = _condition(job, "Complete")
    if complete is not None:
        if result is None:
            return JobStatus(
                JobState.FAILED, 1.0, "failed", error="the Job completed but wrote no result.json"
            )
        return JobStatus(JobState.SUCCEEDED, 1.0, "done", result=result)

    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed is not None:
        parts = [job_error] if job_error else []
        parts.append(f"Kubernetes: {failed.reason}: {failed.message}".rstrip(": "))
        if pod_report.last_termination:
            parts.append(f"last pod: {pod_report.last_termination}")
        return JobStatus(
            JobState.FAILED, float(progress.get("progress", 0.0)), "failed", error="; ".join(parts)
        )

    if pod_report.fatal:
        return JobStatus(JobState.FAILED, 0.0, "failed", error=f"the pod cannot start: {pod_report.fatal}")

    if _condition(job, "Suspended") is not None:
        return JobStatus(JobState.PENDING, 0.0, "the Job is suspended")

    failures = int(status.failed or 0) if status else 0
    retry = ""
    if failures:
        retry = f"retrying (attempt {failures + 1}"
        if job.spec and job.spec.completion_mode != "Indexed":  # Indexed Jobs count retries per index
            retry += f" of {(job.spec.backoff_limit or 0) + 1}"
        retry += ")"
        cause = job_error or pod_report.last_termination
        retry += f" after {cause}" if cause else ""

    if pod_report.running:
        fraction = float(progress.get("progress", 0.0)) if progress.get("state") == "running" else 0.0
        message = progress.get("message", "starting") if progress.get("state") == "running" else "starting"
        if retry:
            message = f"{message} ({retry})"
        return JobStatus(JobState.RUNNING, min(max(fraction, 0.0), 1.0), message)

    message = pod_report.waiting or ("waiting for a pod" if not retry else "")
    message = "; ".join(m for m in (message, retry) if m)
    return JobStatus(JobState.PENDING, 0.0, message)


# The executor ---------------------------------------------------------------------------------------


def _load_kubernetes_config() -> None:
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # a developer's kubeconfig, e.g. the trainer run outside the cluster


def _default_namespace() -> str:
    if IN_CLUSTER_NAMESPACE_FILE.exists():
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
    try:
        _, context = kube_config.list_kube_config_contexts()
        return context.get("context", {}).get("namespace") or "default"
    except Exception:
        return "default"


def _is_status(error: Exception, code: int) -> bool:
    return getattr(error, "status", None) == code


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise InvalidArgument(f"{name} must be >= 0, not {value}")
    return value


def _indexed_completions(job: client.V1Job) -> int:
    """The shard count of a sharded prediction (an Indexed Job), 0 for an ordinary Job."""
    spec = job.spec
    if spec is None or spec.completion_mode != "Indexed":
        return 0
    return int(spec.completions or 0)


def _parse_indexes(text: str) -> list[int]:
    """The API's index lists, e.g. "1,3-5" -> [1, 3, 4, 5]."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            return []
    return out


class KubernetesExecutor(Executor):
    """Each job is one batch/v1 Job; state lives in the cluster and the object store, not here."""

    # A restarted trainer finds its running Jobs again (Trainer._recover keeps them in flight).
    reattach = True

    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        batch_api: Any = None,
        core_api: Any = None,
        store: ObjectStore | None = None,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 2.0,
    ):
        self.settings = settings
        self.template = JobTemplate.from_env(dict(os.environ if env is None else env), settings)
        if batch_api is None or core_api is None:
            _load_kubernetes_config()
            batch_api = batch_api or client.BatchV1Api()
            core_api = core_api or client.CoreV1Api()
        self.batch, self.core = batch_api, core_api
        self.namespace = self.template.namespace or _default_namespace()
        self._store = store
        self.clock = clock
        self._lock = threading.Lock()
        # Jobs this process knows: their output prefixes outlive the Job (ttlSecondsAfterFinished).
        self._prefixes: dict[str, str] = {}
        self._cancelled: set[str] = set()
        self._final: dict[str, JobStatus] = {}
        # The trainer polls often; each status() costs three requests (Job, pods, status.json).
        self.cache_seconds = cache_seconds
        self._recent: dict[str, tuple[float, JobStatus]] = {}
        env_values = dict(os.environ if env is None else env)
        self.shard_rows = _int_env(env_values, PREDICT_SHARD_ROWS_ENV, DEFAULT_PREDICT_SHARD_ROWS)
        self.shard_parallelism = _int_env(env_values, PREDICT_SHARD_PARALLELISM_ENV, 0)
        # One merge at a time: a watch and the trainer's poller may both see the Job complete.
        self._merge_lock = threading.Lock()

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_store(self.settings.storage)
        return self._store

    def name_of(self, job_id: str) -> str:
        return job_name(job_id, self.template.name_prefix)

    # Executor interface -------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> None:
        if spec.kind == JobKind.PREDICT and spec.model_key and self.shard_rows > 0:
            pool_rows = self._pool_rows(spec)
            shards = shard_count(pool_rows or 0, self.shard_rows)
            if shards > 1:
                parallelism = min(self.shard_parallelism, shards) if self.shard_parallelism > 0 else None
                log.info(
                    "job %s predicts %d pool rows in %d shards of <= %d rows",
                    spec.job_id,
                    pool_rows,
                    shards,
                    self.shard_rows,
                )
                self.submit_sharded_prediction(spec, shards, parallelism)
                return
        spec_key = _prefix(spec.output_prefix) + "spec.json"
        self.store.put_bytes(spec_key, spec.to_json().encode())
        job = build_job(spec, spec_key, self.template)
        self._create(job, spec)

    def submit_sharded_prediction(self, spec: JobSpec, shards: int, parallelism: int | None = None) -> None:
        spec_key = _prefix(spec.output_prefix) + "spec.json"
        job = build_sharded_prediction_job(spec, spec_key, self.template, shards, parallelism)
        self.store.put_bytes(spec_key, spec.to_json().encode())
        self.store.put_json(
            sharding.shards_prefix(spec.output_prefix) + SHARD_PLAN_FILE,
            {"job_id": spec.job_id, "shards": shards},
        )
        self._create(job, spec)

    def _pool_rows(self, spec: JobSpec) -> int | None:
        """Pool rows of the spec's dataset: dataset.json's pool_count, else counted in examples.parquet.

        None when neither can be read (the job itself then fails with the reason).
        """
        folder = spec.examples_key.rsplit("/", 1)[0] + "/" if "/" in spec.examples_key else ""
        try:
            meta = self.store.get_json(folder + "dataset.json")
        except (NotFound, ValueError):
            meta = None
        if (
            isinstance(meta, dict)
            and meta.get("examples_key", spec.examples_key) == spec.examples_key
            and isinstance(meta.get("pool_count"), int)
        ):
            return int(meta["pool_count"])
        try:
            import pandas as pd

            frame = pd.read_parquet(io.BytesIO(self.store.get_bytes(spec.examples_key)), columns=["split"])
        except Exception as error:
            log.warning("cannot count the pool of %s (%s): one Job predicts it", spec.examples_key, error)
            return None
        return int((frame["split"] == "pool").sum())

    def _create(self, job: Any, spec: JobSpec) -> None:
        try:
            self.batch.create_namespaced_job(namespace=self.namespace, body=job)
        except Exception as error:
            if not _is_status(error, 409):
                raise
            # A retried submit: fine if the existing Job runs the same job id.
            existing = self.batch.read_namespaced_job(name=job.metadata.name, namespace=self.namespace)
            if (existing.metadata.annotations or {}).get(JOB_ID_ANNOTATION) != spec.job_id:
                raise AlreadyExists(f"Job {job.metadata.name} exists and runs another job") from error
        with self._lock:
            self._prefixes[spec.job_id] = _prefix(spec.output_prefix)
        log.info("submitted Job %s/%s for job %s", self.namespace, job.metadata.name, spec.job_id)

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            seen = self._recent.get(job_id)
        if seen is not None and self.clock() - seen[0] < self.cache_seconds:
            return seen[1]
        status = self._read_status(job_id)
        with self._lock:
            self._recent[job_id] = (self.clock(), status)
        return status

    def _read_status(self, job_id: str) -> JobStatus:
        with self._lock:
            if job_id in self._final:
                return self._final[job_id]
        name = self.name_of(job_id)
        try:
            job = self.batch.read_namespaced_job(name=name, namespace=self.namespace)
        except Exception as error:
            if not _is_status(error, 404):
                raise
            return self._missing(job_id, name)
        prefix = (job.metadata.annotations or {}).get(OUTPUT_PREFIX_ANNOTATION) or self._prefixes.get(job_id)
        pods = self.core.list_namespaced_pod(
            namespace=self.namespace, label_selector=f"{POD_JOB_NAME_LABEL}={name}"
        ).items
        report = diagnose_pods(pods, self.clock(), self.template.stuck_seconds)
        finished = _finished(job)
        shards = _indexed_completions(job)
        if shards:
            progress = self._shard_progress(job, prefix, shards)
        else:
            progress = self._read_json(prefix, "status.json")
        result = self._read_json(prefix, "result.json") if _condition(job, "Complete") else None
        if shards and result is None and prefix and _condition(job, "Complete") is not None:
            try:
                result = self._merge(job_id, prefix, shards)
            except FailedPrecondition as error:
                log.error("job %s: %s", job_id, error)
                return JobStatus(JobState.FAILED, 1.0, "failed", error=f"FailedPrecondition: {error}")
        status = job_status(job, report, progress, result)
        if report.fatal and not finished:
            # A pod that cannot start still holds its GPU until the deadline: delete the Job now.
            log.warning("deleting Job %s: %s", name, status.error)
            self._delete(name)
            with self._lock:
                self._final[job_id] = status
        return status

    def _missing(self, job_id: str, name: str) -> JobStatus:
        with self._lock:
            known, cancelled = job_id in self._prefixes, job_id in self._cancelled
            prefix = self._prefixes.get(job_id)
        if cancelled:
            return JobStatus(JobState.CANCELLED, 0.0, "cancelled")
        if not known:
            raise NotFound(f"no Job {self.namespace}/{name} for job {job_id!r}")
        result = self._read_json(prefix, "result.json")
        plan = self._read_json(prefix, sharding.SHARDS_FOLDER + SHARD_PLAN_FILE) if result is None else None
        if plan and plan.get("job_id") == job_id and prefix:
            # A sharded prediction whose Job was removed before anyone merged it: merge now if all
            # shards are done (an unfinished one fails below).
            try:
                result = self._merge(job_id, prefix, int(plan["shards"]))
            except (FailedPrecondition, KeyError, ValueError) as error:
                log.warning("job %s: cannot merge after the Job was removed: %s", job_id, error)
        if result is not None:  # finished, then removed by ttlSecondsAfterFinished
            return JobStatus(JobState.SUCCEEDED, 1.0, "done", result=result)
        return JobStatus(
            JobState.FAILED, 0.0, "failed", error=f"the Job {name} was deleted before it finished"
        )

    def _merge(self, job_id: str, prefix: str, shards: int) -> dict[str, Any]:
        """Merges a completed sharded prediction once: a later call finds result.json and returns it."""
        with self._merge_lock:
            done = self._read_json(prefix, "result.json")
            if done is not None:
                return done
            log.info("merging %d shards of job %s under %s", shards, job_id, prefix)
            return sharding.merge_shards(self.store, prefix, shards, job_id=job_id)

    def _shard_progress(self, job: client.V1Job, prefix: str | None, shards: int) -> dict[str, Any]:
        """A status.json-like dict for an Indexed Job: shards done so far, or a failed shard's error."""
        succeeded = int(job.status.succeeded or 0) if job.status else 0
        progress: dict[str, Any] = {
            "state": "running",
            "progress": min(succeeded / shards, 1.0),
            "message": f"predicting in {shards} shards: {succeeded} done",
        }
        failed_indexes = (job.status.failed_indexes or "") if job.status else ""
        if prefix and (failed_indexes or _condition(job, "Failed") or _condition(job, "FailureTarget")):
            error = self._shard_error(prefix, failed_indexes, shards)
            if error:
                progress.update(state="failed", error=error)
        return progress

    def _shard_error(self, prefix: str, failed_indexes: str, shards: int) -> str:
        """The first failed shard's own error, from its status file."""
        folder = sharding.shards_prefix(prefix)
        # Without the API's list, look at the first few shards only: never one read per shard of many.
        indexes = _parse_indexes(failed_indexes)[:MAX_SHARD_ERRORS_READ] or range(
            min(shards, MAX_SHARD_ERRORS_READ)
        )
        for index in indexes:
            status = self._read_json(folder, f"{index}.status.json")
            if status and status.get("state") == "failed" and status.get("error"):
                return f"shard {index}: {status['error']}"
        return ""

    def _read_json(self, prefix: str | None, name: str) -> dict[str, Any] | None:
        if not prefix:
            return None
        try:
            value = self.store.get_json(prefix + name)
        except NotFound:
            return None
        except ValueError as error:  # a half-written file on a store without atomic puts
            log.warning("cannot read %s%s: %s", prefix, name, error)
            return None
        return value if isinstance(value, dict) else None

    def cancel(self, job_id: str) -> None:
        name = self.name_of(job_id)
        try:
            job = self.batch.read_namespaced_job(name=name, namespace=self.namespace)
        except Exception as error:
            if _is_status(error, 404):
                return
            raise
        if _finished(job):
            return  # done: keep the Job (and its logs) until its TTL
        with self._lock:
            self._cancelled.add(job_id)
            self._final.pop(job_id, None)
            self._recent.pop(job_id, None)
        self._delete(name)

    def _delete(self, name: str) -> None:
        try:
            # Background: the API deletes the pods after answering; Orphan would leave them running.
            self.batch.delete_namespaced_job(
                name=name, namespace=self.namespace, propagation_policy="Background"
            )
        except Exception as error:
            if not _is_status(error, 404):
                raise

    def cancel_experiment(self, experiment: str) -> list[str]:
        """Deletes every Job of an experiment (running or finished); returns their job ids."""
        selector = self.experiment_selector(experiment)
        jobs = self.batch.list_namespaced_job(namespace=self.namespace, label_selector=selector).items
        job_ids = [(j.metadata.annotations or {}).get(JOB_ID_ANNOTATION, j.metadata.name) for j in jobs]
        with self._lock:
            for job, job_id in zip(jobs, job_ids, strict=True):
                self._recent.pop(job_id, None)
                if not _finished(job):
                    self._cancelled.add(job_id)
        if jobs:
            self.batch.delete_collection_namespaced_job(
                namespace=self.namespace, label_selector=selector, propagation_policy="Background"
            )
        return job_ids

    def experiment_selector(self, experiment: str) -> str:
        terms = {
            "app.kubernetes.io/component": COMPONENT,
            EXPERIMENT_LABEL: label_value(experiment),
        }
        instance = self.template.labels.get("app.kubernetes.io/instance")
        if instance:  # only this installation's Jobs, when several share a namespace
            terms["app.kubernetes.io/instance"] = label_value(instance)
        return ",".join(f"{k}={v}" for k, v in terms.items())

    def watch(self, job_id: str, timeout: float = 3600.0, resync_seconds: int = 10) -> Iterator[JobStatus]:
        """Yields the job's status whenever it changes, until it is done or `timeout` passes.

        A watch on the Job wakes up at once on Job changes; pod-level news (an image pull failing)
        shows at the next resync.
        """
        deadline = self.clock() + timeout
        last: JobStatus | None = None
        name = self.name_of(job_id)
        while True:
            current = self._read_status(job_id)
            if current != last:
                yield current
                last = current
            if current.state.done or self.clock() >= deadline:
                return
            stream = kube_watch.Watch(return_type="V1Job")
            for event in stream.stream(
                self.batch.list_namespaced_job,
                namespace=self.namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=max(1, min(resync_seconds, int(deadline - self.clock()) or 1)),
            ):
                if event["type"] in ("MODIFIED", "DELETED"):
                    stream.stop()  # re-read the whole state (pods, status.json) below
