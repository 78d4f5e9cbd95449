"""KubernetesExecutor: each trainer job is one batch/v1 Job; its state lives in the cluster and in
the object store, so a restarted trainer reattaches to the Jobs it had started.

submit() writes the JobSpec to `{output_prefix}spec.json` and creates a Job running
`python -m labelloop.trainer.job --spec-json <that key>` (manifests.py); status() combines the Job's
conditions, its pods' diagnosis (pods.py) and the job's own status.json / result.json (status.py);
cancel() deletes the Job. Large predictions run sharded (sharded.py).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from kubernetes import client

from labelloop.core.config import Settings
from labelloop.core.errors import AlreadyExists, FailedPrecondition, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.trainer.contract import JobSpec, JobState, JobStatus
from labelloop.trainer.executors.base import Executor
from labelloop.trainer.executors.kubernetes import status as job_state
from labelloop.trainer.executors.kubernetes.api import JobsApi, default_namespace
from labelloop.trainer.executors.kubernetes.manifests import (
    JOB_ID_ANNOTATION,
    OUTPUT_PREFIX_ANNOTATION,
    build_job,
    build_sharded_prediction_job,
    folder,
    job_name,
)
from labelloop.trainer.executors.kubernetes.outputs import RESULT_FILE, SPEC_FILE, STATUS_FILE, read_json
from labelloop.trainer.executors.kubernetes.pods import diagnose_pods
from labelloop.trainer.executors.kubernetes.sharded import ShardedPredictions
from labelloop.trainer.executors.kubernetes.template import JobTemplate

log = logging.getLogger(__name__)


class KubernetesExecutor(Executor):
    """Runs trainer jobs as Kubernetes Jobs (LABELLOOP_TRAINER_EXECUTOR=kubernetes).

    `env` (default: os.environ) holds the job template and the sharding settings; the API objects
    default to the cluster's (in-cluster config, else the kubeconfig).
    """

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        *,
        env: dict[str, str] | None = None,
        batch_api: Any = None,
        core_api: Any = None,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 2.0,
    ):
        env_values = dict(os.environ if env is None else env)
        self.template = JobTemplate.from_env(env_values, settings)
        self.store = store
        self.sharded = ShardedPredictions(store, env_values)
        if batch_api is None or core_api is None:
            self.api = JobsApi.connect(self.template.namespace)
        else:
            self.api = JobsApi(batch_api, core_api, self.template.namespace or default_namespace())
        self.clock = clock
        self._lock = threading.Lock()
        # Output prefixes of the jobs this process submitted or reattached to.
        self._prefixes: dict[str, str] = {}
        self._cancelled: set[str] = set()
        self._final: dict[str, JobStatus] = {}
        # The trainer polls often; each status() costs three requests (Job, pods, status.json).
        self.cache_seconds = cache_seconds
        self._recent: dict[str, tuple[float, JobStatus]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore) -> Self:
        return cls(settings, store)

    def _job_name(self, job_id: str) -> str:
        return job_name(job_id, self.template.name_prefix)

    # Executor interface -------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> None:
        spec_key = folder(spec.output_prefix) + SPEC_FILE
        plan = self.sharded.plan(spec)
        if plan is None:
            job = build_job(spec, spec_key, self.template)
        else:
            job = build_sharded_prediction_job(spec, spec_key, self.template, plan.shards, plan.parallelism)
        self.store.put_bytes(spec_key, spec.to_json().encode())
        if plan is not None:
            self.sharded.write_plan(spec, plan)
        name = self._job_name(spec.job_id)  # the name build_job gave the Job
        if not self.api.create_job(job):
            # A retried submit: fine if the existing Job runs the same job id.
            existing = self.api.read_job(name)
            if existing is None or _annotations(existing).get(JOB_ID_ANNOTATION) != spec.job_id:
                raise AlreadyExists(f"Job {name} exists and does not run job {spec.job_id!r}")
        self._remember(spec)
        log.info("submitted Job %s/%s for job %s", self.api.namespace, name, spec.job_id)

    def reattach(self, spec: JobSpec) -> bool:
        """The Job, or once it is gone the job's own files, still answer for the job."""
        self._remember(spec)
        return True

    def _remember(self, spec: JobSpec) -> None:
        with self._lock:  # where the job's files are: they outlive the Job (ttlSecondsAfterFinished)
            self._prefixes[spec.job_id] = folder(spec.output_prefix)

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            seen = self._recent.get(job_id)
        if seen is not None and self.clock() - seen[0] < self.cache_seconds:
            return seen[1]
        status = self._read_status(job_id)
        with self._lock:
            self._recent[job_id] = (self.clock(), status)
        return status

    def cancel(self, job_id: str) -> None:
        name = self._job_name(job_id)
        job = self.api.read_job(name)
        if job is None or job_state.finished(job):
            return  # gone, or done: keep a finished Job (and its logs) until its TTL
        with self._lock:
            self._cancelled.add(job_id)
            self._final.pop(job_id, None)
            self._recent.pop(job_id, None)
        self.api.delete_job(name)

    # Reading a job's state ----------------------------------------------------------------------

    def _read_status(self, job_id: str) -> JobStatus:
        with self._lock:
            if job_id in self._final:
                return self._final[job_id]
        name = self._job_name(job_id)
        job = self.api.read_job(name)
        if job is None:
            return self._missing(job_id, name)
        prefix = _annotations(job).get(OUTPUT_PREFIX_ANNOTATION) or self._prefixes.get(job_id)
        report = diagnose_pods(self.api.list_pods(name), self.clock(), self.template.stuck_seconds)
        complete = job_state.condition(job, "Complete") is not None
        shards = job_state.indexed_completions(job)
        progress: dict[str, Any] | None
        if shards:
            failed = job_state.failed_indexes(job)
            shard_error = self.sharded.error(prefix, failed, shards) if prefix and failed is not None else ""
            progress = job_state.shard_progress(job, shards, shard_error)
        else:
            progress = read_json(self.store, prefix + STATUS_FILE) if prefix else None
        result = read_json(self.store, prefix + RESULT_FILE) if complete and prefix else None
        if shards and complete and prefix and result is None:
            try:
                result = self.sharded.merge(job_id, prefix, shards)
            except FailedPrecondition as error:
                log.error("job %s: %s", job_id, error)
                return JobStatus(JobState.FAILED, 1.0, "failed", error=f"FailedPrecondition: {error}")
        status = job_state.job_status(job, report, progress, result)
        if report.fatal and not job_state.finished(job):
            # A pod that cannot start still holds its GPU until the deadline: delete the Job now.
            log.warning("deleting Job %s: %s", name, status.error)
            self.api.delete_job(name)
            with self._lock:
                self._final[job_id] = status
        return status

    def _missing(self, job_id: str, name: str) -> JobStatus:
        """The state of a job whose Job is gone: cancelled, finished and removed by its TTL, or lost."""
        with self._lock:
            cancelled = job_id in self._cancelled
            prefix = self._prefixes.get(job_id)
        if cancelled:
            return JobStatus(JobState.CANCELLED, 0.0, "cancelled")
        if prefix is None:
            raise NotFound(f"no Job {self.api.namespace}/{name} for job {job_id!r}")
        result = read_json(self.store, prefix + RESULT_FILE)
        shards = self.sharded.planned_shards(job_id, prefix) if result is None else None
        if shards is not None:
            # A sharded prediction whose Job was removed before anyone merged it: merge now if all
            # shards are done (an unfinished one fails below).
            try:
                result = self.sharded.merge(job_id, prefix, shards)
            except FailedPrecondition as error:
                log.warning("job %s: cannot merge after the Job was removed: %s", job_id, error)
        if result is not None:  # finished, then removed by ttlSecondsAfterFinished
            return JobStatus(JobState.SUCCEEDED, 1.0, "done", result=result)
        return JobStatus(
            JobState.FAILED, 0.0, "failed", error=f"the Job {name} was deleted before it finished"
        )


def _annotations(job: client.V1Job) -> dict[str, str]:
    return (job.metadata.annotations if job.metadata else None) or {}
