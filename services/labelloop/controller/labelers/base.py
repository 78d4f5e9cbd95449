"""The labeler plug-in: what a round asks of whoever labels its examples.

A round hands its labeler a LabelRequest (which examples, under which request id) and a
LabelingContext (the annotation log, the dataset, a clock); the labeler returns once each example
has one new label in the experiment's annotation log. The round never asks which labeler it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from labelloop.controller.dataset import DatasetView
from labelloop.controller.labeling.tasks import ExamplePrediction, TaskBoard
from labelloop.controller.labelset import LabelSet


def no_predictions() -> Mapping[str, ExamplePrediction]:
    return {}


@dataclass(frozen=True)
class LabelRequest:
    """One batch to label: round 0's initial examples, or a round's selection."""

    example_ids: list[str]
    # The AppendAnnotations request id ("{experiment}-r{n}-label"): a replayed step is stored once.
    request_id: str
    # Seed of anything drawn at random for this batch: a replay after a crash draws the same.
    seed: tuple[int, ...]
    # Annotations in the log when the round's snapshot was taken, and per example then.
    annotations_before: int = 0
    counts_before: Mapping[str, int] = field(default_factory=dict)
    # Some examples already have labels: they need one from someone who has not labeled them yet.
    relabel: bool = False
    # The experiment's seed: what must stay the same across all its batches (simulated annotators'
    # confusions) derives from it.
    experiment_seed: int = 0
    # The round the batch belongs to, and whether it is round 0's first labeled set (which round 0
    # labels before its own selection).
    round: int = 0
    first_set: bool = False
    # The round model's prediction per example (none in round 0), read on demand: a labeler that
    # shows predictions to people calls it, the simulated oracle never pays for it.
    predictions: Callable[[], Mapping[str, ExamplePrediction]] = no_predictions


@dataclass(frozen=True)
class LabelingContext:
    """What a labeler may use while it labels one batch."""

    experiment_id: str
    labels: LabelSet  # the experiment's annotation log and the snapshots taken of it
    view: DatasetView  # classes, pool ids, ground truth
    # Epoch seconds when waiting for this batch began, persisted on the first call so that a
    # timeout survives controller restarts.
    wait_started: Callable[[], float]
    progress: Callable[[str], None]  # shown as the round's progress_message
    interrupted: Callable[[], bool]  # the experiment was paused or cancelled: raise StopRequested
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    poll_seconds: float
    # Labels the round still waits for, shown as Round.labels_awaited ("waiting for labels" to a
    # tool that watches the experiment); set 0 when the wait is over.
    awaiting: Callable[[int], None] = lambda count: None
    # The controller's labeling queue (one per process), shared with LabelingService.
    tasks: TaskBoard | None = None


class Labeler(Protocol):
    """Built from its field of ExperimentConfig's `labeler` oneof (see labelers/__init__.py)."""

    @property
    def needs_truth(self) -> bool:
        """True when it reads the dataset's ground truth (CreateExperiment then checks there is one)."""
        ...

    @property
    def truth_column(self) -> str:
        """The ground-truth column it reads; "" for the dataset's label column."""
        ...

    def check(self) -> None:
        """Raises InvalidArgument, naming the field, when its own settings are wrong."""
        ...

    def label(self, request: LabelRequest, context: LabelingContext) -> int:
        """Returns once every example of the request has one new annotation in the log (an example
        with nobody left to label it may be skipped); returns the number of annotations in the log
        then. Must be idempotent: after a crash the same request comes again."""
        ...
