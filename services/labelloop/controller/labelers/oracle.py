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
        settings = self.settings
        if not 0 <= settings.noise_rate < 1:
            raise InvalidArgument(f"simulated_oracle.noise_rate={settings.noise_rate} must be in [0, 1)")
        if settings.annotator_count < 0:
            raise InvalidArgument(f"simulated_oracle.annotator_count={settings.annotator_count} must be >= 0")
        accuracies = list(settings.annotator_accuracies)
        bad = [a for a in accuracies if not 0 < a <= 1]
        if bad:
            raise InvalidArgument(
                f"simulated_oracle.annotator_accuracies has {bad[:3]}: each accuracy must be in (0, 1]"
            )
        if accuracies and settings.noise_rate:
            raise InvalidArgument(
                "simulated_oracle sets both noise_rate and annotator_accuracies: the accuracies replace "
                "noise_rate, set only one"
            )
        if accuracies and settings.annotator_count not in (0, len(accuracies)):
            raise InvalidArgument(
                f"simulated_oracle.annotator_count={settings.annotator_count} but annotator_accuracies has "
                f"{len(accuracies)} values: the accuracies give the annotator count, leave it 0"
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
            experiment_seed=request.experiment_seed,
        )
        context.labels.append(labels, request.request_id)
        return request.annotations_before + len(labels)


def annotator_names(count: int) -> list[str]:
    return [f"oracle-{i}" for i in range(max(1, count))]


# Concentration of each annotator's confusion rows: 1 draws them uniformly from the simplex, so one
# annotator mistakes a "3" mostly for an "8", another mostly for a "5" (as people do).
CONFUSION_CONCENTRATION = 1.0


def confusions(annotators: int, classes: int, experiment_seed: int) -> np.ndarray:
    """[annotator, true class, given class] probabilities of the wrong class an annotator gives when
    wrong (the diagonal is 0). Fixed per experiment seed and annotator: every batch, and every replay,
    sees the same annotators."""
    table = np.zeros((annotators, classes, classes))
    if classes < 2:
        return table
    for a in range(annotators):
        rng = np.random.default_rng([experiment_seed, a, 7])
        for c in range(classes):
            others = [k for k in range(classes) if k != c]
            table[a, c, others] = rng.dirichlet(np.full(len(others), CONFUSION_CONCENTRATION))
    return table


def oracle_labels(
    oracle: experiments_pb2.SimulatedOracle,
    example_ids: list[str],
    truth: dict[str, str],
    classes: list[str],
    seed: tuple[int, ...],
    first_turn: int = 0,
    existing: dict[str, set[str]] | None = None,
    experiment_seed: int = 0,
) -> list[Label]:
    """One label per example, deterministic for a seed so that a replayed request is identical.

    Annotators take turns starting at `first_turn`; an example that already has labels gets one
    from an annotator who has not labeled it yet, and none when every annotator has. With
    annotator_accuracies, annotator i gives the truth with probability accuracies[i], otherwise a
    wrong class drawn from its own confusions (see `confusions`); else every annotator errs with
    noise_rate, uniformly among the wrong classes.
    """
    if oracle.annotator_accuracies:
        return _labels_by_accuracy(
            list(oracle.annotator_accuracies),
            example_ids,
            truth,
            classes,
            seed,
            first_turn,
            existing or {},
            experiment_seed,
        )
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


def _labels_by_accuracy(
    accuracies: list[float],
    example_ids: list[str],
    truth: dict[str, str],
    classes: list[str],
    seed: tuple[int, ...],
    first_turn: int,
    existing: dict[str, set[str]],
    experiment_seed: int,
) -> list[Label]:
    names = annotator_names(len(accuracies))
    confusion = confusions(len(names), len(classes), experiment_seed)
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(list(seed))
    labels: list[Label] = []
    turn = first_turn
    for example_id in example_ids:
        done = existing.get(example_id, set())
        fresh = [(turn + k) % len(names) for k in range(len(names))]
        annotator = next((a for a in fresh if names[a] not in done), None)
        correct_draw, wrong_draw = rng.random(2)  # drawn for every example: replays stay aligned
        if annotator is None:
            continue
        turn += 1
        label = truth[example_id]
        if correct_draw >= accuracies[annotator] and len(classes) > 1:
            row = confusion[annotator, index[label]]
            wrong = int(np.searchsorted(np.cumsum(row), wrong_draw * row.sum(), side="right"))
            label = classes[min(wrong, len(classes) - 1)]
        labels.append(Label(example_id, names[annotator], label))
    return labels
