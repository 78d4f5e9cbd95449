"""The job template: everything about a trainer Job's pod that is not in the JobSpec.

It comes from one JSON env var written by the Helm chart, LABELLOOP_JOB_TEMPLATE (image, GPUs,
scheduling, env with secret references, security context); LABELLOOP_JOB_IMAGE,
LABELLOOP_JOB_NAMESPACE and LABELLOOP_JOB_GPUS override single fields.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from typing import Any

from labelloop.core.config import Settings
from labelloop.core.errors import InvalidArgument

log = logging.getLogger(__name__)

TEMPLATE_ENV = "LABELLOOP_JOB_TEMPLATE"
IMAGE_ENV = "LABELLOOP_JOB_IMAGE"
NAMESPACE_ENV = "LABELLOOP_JOB_NAMESPACE"
GPUS_ENV = "LABELLOOP_JOB_GPUS"

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
            # Jobs call no service: they get no service token.
            left_out = ("LABELLOOP_TRAINER_EXECUTOR", "LABELLOOP_TOKEN")
            plain = {k: v for k, v in settings.to_env().items() if k not in left_out}
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
