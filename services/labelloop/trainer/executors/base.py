"""The executor interface: where the trainer service's jobs run.

The trainer submits a JobSpec, reads its JobStatus, cancels it, and after a restart asks the
executor to reattach to the jobs it had in flight. An executor that learns of its jobs' changes as they
happen (the local worker's events) says so through `on_change`, and the trainer then reads a status
only when told; the others are polled. An executor is chosen by name from
registry.py (LABELLOOP_TRAINER_EXECUTOR) and built with `from_settings`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

from labelloop.core.config import Settings
from labelloop.core.storage import ObjectStore
from labelloop.trainer.contract import JobSpec, JobStatus


class Executor(ABC):
    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, store: ObjectStore) -> Self:
        """The executor the trainer service runs with (`python -m labelloop.trainer`)."""

    @abstractmethod
    def submit(self, spec: JobSpec) -> None:
        """Starts the job; returns at once. Submitting the same job id again is a no-op."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """Current state of a submitted (or reattached) job; NotFound if the executor never saw it."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stops the job if it is still running; a no-op once it is done."""

    @abstractmethod
    def reattach(self, spec: JobSpec) -> bool:
        """Takes back a job submitted before the trainer restarted, so that status() and cancel()
        answer for it again. False when the job cannot have survived the restart: the trainer then
        fails its run."""

    def on_change(self, listener: Callable[[str], None]) -> bool:
        """Calls listener(job_id) after each change of a job's status (from one of the executor's
        threads: it must return quickly). False when this executor cannot tell: its caller polls
        status() instead."""
        return False

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Blocks until a job submitted now would start at once (the local worker has imported its
        libraries); False if timeout passed first. Health reports SERVING only after it returns."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases workers on shutdown."""
