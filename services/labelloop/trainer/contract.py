"""The executor interface: the trainer service submits jobs, polls their state, cancels them.

A job is fully described by a JobSpec (plain JSON), so it can run in another process or a pod
that only has the object store: it reads the snapshot from the store and writes the model and
the probability arrays back under `output_prefix`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    TRAIN = "train"  # fit on a snapshot, then predict pool and test
    PREDICT = "predict"  # predict pool and test with a stored model


@dataclass
class JobSpec:
    job_id: str
    kind: JobKind
    # Object-store keys, resolved by the trainer service before submission.
    examples_key: str  # the dataset's examples.parquet
    output_prefix: str  # folder for model/, pool_probabilities.npy, test_probabilities.npy, result.json
    classes: list[str]
    image_column: str = ""
    feature_columns: list[str] = field(default_factory=list)
    label_column: str = ""  # ground truth, used only to report test accuracy
    labels_key: str = ""  # snapshot's labels.parquet (TRAIN)
    model_key: str = ""  # folder of a saved predictor (PREDICT)
    config: dict[str, Any] = field(default_factory=dict)  # TrainerConfig as a dict (json_format)
    labels: dict[str, str] = field(default_factory=dict)  # experiment, round: for pod labels and logs

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        data = json.loads(text)
        data["kind"] = JobKind(data["kind"])
        return cls(**data)


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class JobStatus:
    state: JobState
    progress: float = 0.0  # 0..1
    message: str = ""
    # On success: the job's result.json content (model key, array keys, seconds, accuracy).
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # on failure: why, for people


class Executor(ABC):
    @abstractmethod
    def submit(self, spec: JobSpec) -> None:
        """Starts the job; returns at once."""

    @abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """Current state of a submitted job; NotFound if the executor never saw it."""

    @abstractmethod
    def cancel(self, job_id: str) -> None:
        """Stops the job if it is still running; a no-op once it is done."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases workers on shutdown."""
