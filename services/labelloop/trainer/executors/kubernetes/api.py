"""The Kubernetes API calls of the executor, in one namespace: create, read and delete Jobs, list
their pods. Not-found and conflict answers come back as values, other API errors as exceptions.

The client is configured from inside the cluster (the trainer's ServiceAccount), else from a
developer's kubeconfig.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config

POD_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set by the Job controller on its pods
IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def load_config() -> None:
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()  # a developer's kubeconfig, e.g. the trainer run outside the cluster


def default_namespace() -> str:
    """The trainer's own namespace in a cluster, else the kubeconfig context's, else "default"."""
    if IN_CLUSTER_NAMESPACE_FILE.exists():
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
    try:
        _, context = kube_config.list_kube_config_contexts()
        return context.get("context", {}).get("namespace") or "default"
    except Exception:
        return "default"


def _is_status(error: Exception, code: int) -> bool:
    return getattr(error, "status", None) == code


class JobsApi:
    """batch/v1 Jobs and their pods in `namespace`, through BatchV1Api and CoreV1Api (or doubles)."""

    def __init__(self, batch_api: Any, core_api: Any, namespace: str):
        self.batch, self.core, self.namespace = batch_api, core_api, namespace

    @classmethod
    def connect(cls, namespace: str = "") -> JobsApi:
        """The cluster's API; an empty namespace means the trainer's own."""
        load_config()
        return cls(client.BatchV1Api(), client.CoreV1Api(), namespace or default_namespace())

    def create_job(self, job: client.V1Job) -> bool:
        """Creates the Job; False when a Job of that name exists already."""
        try:
            self.batch.create_namespaced_job(namespace=self.namespace, body=job)
        except Exception as error:
            if not _is_status(error, 409):
                raise
            return False
        return True

    def read_job(self, name: str) -> client.V1Job | None:
        try:
            return self.batch.read_namespaced_job(name=name, namespace=self.namespace)
        except Exception as error:
            if not _is_status(error, 404):
                raise
            return None

    def list_pods(self, job_name: str) -> list[client.V1Pod]:
        return list(
            self.core.list_namespaced_pod(
                namespace=self.namespace, label_selector=f"{POD_JOB_NAME_LABEL}={job_name}"
            ).items
        )

    def delete_job(self, name: str) -> None:
        """Deletes the Job and, in the background, its pods; a no-op when it is gone already."""
        try:
            # Background: the API deletes the pods after answering; Orphan would leave them running.
            self.batch.delete_namespaced_job(
                name=name, namespace=self.namespace, propagation_policy="Background"
            )
        except Exception as error:
            if not _is_status(error, 404):
                raise
