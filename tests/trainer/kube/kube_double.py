"""A test double of the Kubernetes API for the KubernetesExecutor: FakeKubernetesApi.

It stands in for both kubernetes.client.BatchV1Api and CoreV1Api, with just the calls the executor
makes (executors/kubernetes/api.py). It is NOT a cluster: it stores the objects it is given, answers
reads with recorded API JSON (fixtures/ beside this file, hand-written in the exact shape the API
server returns), and turns that JSON into client models through the real client's deserializer, as
the real API classes do. Errors are the real client's exception types carrying recorded Status
bodies. Every call is recorded for assertions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException, NotFoundException

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _deserialize(data: Any, klass: str) -> Any:
    return ApiClient().deserialize(json.dumps(data), klass, "application/json")


class FakeKubernetesApi:
    """Test double for BatchV1Api + CoreV1Api (see the module docstring)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}  # Job name -> the Job's JSON
        self.pods: dict[str, dict[str, Any]] = {}  # Job name -> a PodList's JSON
        self.calls: list[tuple[str, dict[str, Any]]] = []

    # BatchV1Api ------------------------------------------------------------------------------------

    def create_namespaced_job(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        manifest = ApiClient().sanitize_for_serialization(body)
        self.calls.append(("create_namespaced_job", {"namespace": namespace, "body": manifest}))
        name = manifest["metadata"]["name"]
        if name in self.jobs:
            raise ApiException(
                status=409, reason="Conflict", body=json.dumps(fixture("status_already_exists.json"))
            )
        created = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}, "status": {}}
        self.jobs[name] = created
        return _deserialize(created, "V1Job")

    def read_namespaced_job(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self.calls.append(("read_namespaced_job", {"name": name, "namespace": namespace}))
        if name not in self.jobs:
            body = fixture("status_not_found.json")
            body["message"] = f'jobs.batch "{name}" not found'
            raise NotFoundException(status=404, reason="Not Found", body=json.dumps(body))
        return _deserialize(self.jobs[name], "V1Job")

    def delete_namespaced_job(
        self, name: str, namespace: str, propagation_policy: str | None = None, **kw: Any
    ) -> Any:
        self.calls.append(("delete_namespaced_job", {"name": name, "propagation_policy": propagation_policy}))
        if self.jobs.pop(name, None) is None:
            raise NotFoundException(
                status=404, reason="Not Found", body=json.dumps(fixture("status_not_found.json"))
            )
        self.pods.pop(name, None)

    # CoreV1Api -------------------------------------------------------------------------------------

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None, **kwargs: Any) -> Any:
        self.calls.append(("list_namespaced_pod", {"namespace": namespace, "label_selector": label_selector}))
        key, _, job = (label_selector or "").partition("=")
        assert key == "batch.kubernetes.io/job-name", label_selector
        pods = self.pods.get(job, {"apiVersion": "v1", "kind": "PodList", "items": [], "metadata": {}})
        return _deserialize(pods, "V1PodList")

    # Test helpers ----------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [args for name, args in self.calls if name == method]
