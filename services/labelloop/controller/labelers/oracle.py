"""The simulated oracle: reveals the dataset's ground truth, optionally noisy, from several annotators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.v1 import experiments_pb2


@dataclass(frozen=True)
class Label:
    example_id: str
    annotator: str
    label: str


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
