"""Pod diagnosis: what a Job's pods say beyond the Job's own status (image pulls, OOM kills, no GPU).

Waiting reasons that never resolve fail the job at once; those that may resolve fail it once they
have lasted longer than the template's stuckSeconds, so a pod that cannot start does not hold a
GPU until the Job's deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Waiting reasons that never resolve by themselves: fail at once rather than hold a GPU until the deadline.
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
# Waiting reasons that may resolve (a registry hiccup, a Secret created late); fail after stuck_seconds.
STUCK_WAITING = {"ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "CreateContainerError"}


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
