"""The job contract between the trainer service, its executors and the job entry point (job.py).

A job is fully described by a JobSpec (plain JSON), so it can run in another process or a pod
that only has the object store: it reads the snapshot from the store and writes the model and
the probability arrays back under `output_prefix`. An executor reports a job's progress as a
JobStatus. This module depends on nothing else of the trainer, so both sides can import it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    TRAIN = "train"  # fit on a snapshot, then predict pool and test
    PREDICT = "predict"  # predict pool and test with a stored model
    EMBED = "embed"  # embed the pool with the pretrained backbone alone (no labels, no model)
    # Predict the rows of a manifest of new examples (examples_key: its CSV/Parquet) with a stored
    # model; no dataset, no splits (newdata.py).
    PREDICT_NEW = "predict_new"


@dataclass
class JobSpec:
    job_id: str
    kind: JobKind
    # Object-store keys, resolved by the trainer service before submission.
    examples_key: str  # the dataset's examples.parquet
    # Folder for model/, pool_probabilities.npy, test_probabilities.npy, pool_embeddings.npy, result.json.
    output_prefix: str
    classes: list[str]
    image_column: str = ""
    feature_columns: list[str] = field(default_factory=list)
    label_column: str = ""  # ground truth, used only to report test accuracy
    labels_key: str = ""  # snapshot's labels.parquet (TRAIN)
    model_key: str = ""  # folder of a saved predictor (PREDICT)
    config: dict[str, Any] = field(default_factory=dict)  # TrainerConfig as a dict (json_format)
    labels: dict[str, str] = field(default_factory=dict)  # experiment, round: for pod labels and logs
    # "datasets/{d}": where the frozen-backbone embedding cache lives (layout.embeddings_cache_prefix);
    # empty in older specs, then the cache sits beside examples_key.
    dataset: str = ""
    # PREDICT_NEW: the manifest column that identifies each row ("" numbers the rows); image_column
    # is then the manifest's image column, which may differ from the model's.
    id_column: str = ""
    # TRAIN and PREDICT: also write the pool's embeddings (a second pass of the model over the pool).
    pool_embeddings: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the kind as its string): what an operation record keeps."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(**{**data, "kind": JobKind(data["kind"])})

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text))


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
    # On success: the job's result.json content (model key, array keys, seconds, accuracy, mode).
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # on failure: why, for people
