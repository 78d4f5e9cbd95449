"""The simulated oracle: reveals the dataset's ground truth, optionally noisy, from several annotators."""

from __future__ import annotations

import numpy as np

from labelloop.controller.labelers.base import LabelingContext, LabelRequest
from labelloop.controller.labelset import Label
from labelloop.core.errors import InvalidArgument
from labelloop.v1 import experiments_pb2


class SimulatedOracle:
    """Labels at once, from the ground truth: for experiments and benchmarks."""

    needs_truth = True

    def __init__(self, settings: experiments_pb2.SimulatedOracle):
        self.settings = settings

    @property
    def truth_column(self) -> str:
        return self.settings.label_column

    def check(self) -> None:
        if not 0 <= self.settings.noise_rate < 1:
            raise InvalidArgument(f"simulated_oracle.noise_rate={self.settings.noise_rate} must be in [0, 1)")
        if self.settings.annotator_count < 0:
            raise InvalidArgument(
                f"simulated_oracle.annotator_count={self.settings.annotator_count} must be >= 0"
            )

    def label(self, request: LabelRequest, context: LabelingContext) -> int:
        existing = context.labels.annotators_by_example() if request.relabel else {}
        labels = oracle_labels(
            self.settings,
            request.example_ids,
            context.view.ground_truth(self.truth_column),
            context.view.classes,
            seed=request.seed,
            first_turn=request.annotations_before,
            existing=existing,
        )
        context.labels.append(labels, request.request_id)
        return request.annotations_before + len(labels)


def annotator_names(count: int) -> list[str]:
    return [f"oracle-{i}" for i in range(max(1, count))]


def oracle_labels(
    oracle: experiments_pb2.SimulatedOracle,
    example_ids: list[str],
    truth: dict[str, str],
    classes: list[str],
    seed: tuple[int, ...],
    first_turn: int = 0,
    existing: dict[str, set[str]] | None = None,
) -> list[Label]:
    """One label per example, deterministic for a seed so that a replayed request is identical.

    Annotators take turns starting at `first_turn`; an example that already has labels gets one
    from an annotator who has not labeled it yet, and none when every annotator has.
    """
    names = annotator_names(oracle.annotator_count)
    rng = np.random.default_rng(list(seed))
    existing = existing or {}
    labels: list[Label] = []
    turn = first_turn
    for example_id in example_ids:
        done = existing.get(example_id, set())
        fresh = [names[(turn + k) % len(names)] for k in range(len(names))]
        annotator = next((a for a in fresh if a not in done), None)
        noisy = rng.random() < oracle.noise_rate  # drawn for every example: replays stay aligned
        wrong = int(rng.integers(max(1, len(classes) - 1)))
        if annotator is None:
            continue
        turn += 1
        label = truth[example_id]
        if noisy and len(classes) > 1:
            others = [c for c in classes if c != label]
            label = others[wrong % len(others)]
        labels.append(Label(example_id, annotator, label))
    return labels
