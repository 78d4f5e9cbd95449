"""A trainer job's state read from its batch/v1 Job, what its pods say, and the job's own files.

Pure functions over client models (V1Job) and plain dicts, so each branch is tested against
recorded API objects without a cluster.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from labelloop.trainer.contract import JobState, JobStatus
from labelloop.trainer.executors.kubernetes.pods import PodReport


def condition(job: client.V1Job, kind: str) -> Any:
    """The Job's condition of this type when it is true (Complete, Failed, ...), else None."""
    for cond in (job.status.conditions if job.status else None) or []:
        if cond.type == kind and cond.status == "True":
            return cond
    return None


def finished(job: client.V1Job) -> bool:
    return condition(job, "Complete") is not None or condition(job, "Failed") is not None


def indexed_completions(job: client.V1Job) -> int:
    """The shard count of a sharded prediction (an Indexed Job), 0 for an ordinary Job."""
    spec = job.spec
    if spec is None or spec.completion_mode != "Indexed":
        return 0
    return int(spec.completions or 0)


def failed_indexes(job: client.V1Job) -> list[int] | None:
    """The shards of an Indexed Job that failed: the API's list, [] when it names none, and None
    while nothing has failed (no failed index and no Failed or FailureTarget condition)."""
    text = (job.status.failed_indexes or "") if job.status else ""
    if not text and condition(job, "Failed") is None and condition(job, "FailureTarget") is None:
        return None
    return parse_indexes(text)


def parse_indexes(text: str) -> list[int]:
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


def shard_progress(job: client.V1Job, shards: int, shard_error: str = "") -> dict[str, Any]:
    """A status.json-like dict for an Indexed Job: shards done so far, or a failed shard's error."""
    succeeded = int(job.status.succeeded or 0) if job.status else 0
    progress: dict[str, Any] = {
        "state": "running",
        "progress": min(succeeded / shards, 1.0),
        "message": f"predicting in {shards} shards: {succeeded} done",
    }
    if shard_error:
        progress.update(state="failed", error=shard_error)
    return progress


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

    complete = condition(job, "Complete")
    if complete is not None:
        if result is None:
            return JobStatus(
                JobState.FAILED, 1.0, "failed", error="the Job completed but wrote no result.json"
            )
        return JobStatus(JobState.SUCCEEDED, 1.0, "done", result=result)

    failed = condition(job, "Failed") or condition(job, "FailureTarget")
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

    if condition(job, "Suspended") is not None:
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
