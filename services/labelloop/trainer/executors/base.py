"""The executor interface: where the trainer service's jobs run.

The trainer submits a JobSpec, polls its JobStatus, cancels it, and after a restart asks the
executor to reattach to the jobs it had in flight. An executor is chosen by name from
registry.py (LABELLOOP_TRAINER_EXECUTOR) and built with `from_settings`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases workers on shutdown."""
