"""Exact lowest-k selection: equals a full stable sort by (score, tie key), ties included."""

from __future__ import annotations

import numpy as np
import pytest
from labelloop.selector.batch.lowest_scores import select, smallest, tie_keys


def full_sort(scores: np.ndarray, rows: np.ndarray, seed: int) -> np.ndarray:
    return np.lexsort((tie_keys(seed, rows), scores))


def greedy_capped(order: np.ndarray, classes: np.ndarray, cap: int, k: int) -> list[int]:
    taken: list[int] = []
    counts: dict[int, int] = {}
    for position in order:
        if counts.get(classes[position], 0) < cap:
            taken.append(int(position))
            counts[classes[position]] = counts.get(classes[position], 0) + 1
            if len(taken) == k:
                break
    return taken


@pytest.mark.parametrize("trial", range(40))
def test_equals_full_stable_sort_on_random_inputs(trial: int) -> None:
    rng = np.random.default_rng(trial)
    n = int(rng.integers(1, 400))
    # Few distinct values: many ties, also across the partition boundary.
    scores = rng.integers(0, 6, n).astype(np.float64) / 7 if trial % 2 else rng.random(n)
    rows = np.sort(rng.choice(10 * n, n, replace=False))
    seed, k = int(rng.integers(-(2**63), 2**63)), int(rng.integers(1, n + 5))
    order = full_sort(scores, rows, seed)
    np.testing.assert_array_equal(smallest(scores, rows, k, seed), order[:k])
    classes, cap = rng.integers(0, 4, n), int(rng.integers(1, 5))
    assert select(scores, rows, k, seed, classes, cap).tolist() == greedy_capped(order, classes, cap, k)


def test_ties_at_the_boundary_follow_the_seed() -> None:
    scores = np.array([0.5] * 10 + [0.1, 0.9])
    rows = np.arange(12)
    batch = smallest(scores, rows, 4, seed=1)
    assert batch[0] == 10  # the strictly lower score always gets in
    assert set(batch[1:]) <= set(range(10))  # three of the ten tied rows ...
    np.testing.assert_array_equal(batch, smallest(scores, rows, 4, seed=1))  # ... the same ones per seed
    picks = {tuple(smallest(scores, rows, 4, seed=s)[1:]) for s in range(20)}
    assert len(picks) > 1  # other seeds pick other tied rows


def test_tie_keys_are_distinct_and_seeded() -> None:
    rows = np.arange(100_000)
    assert len(np.unique(tie_keys(3, rows))) == len(rows)
    assert not np.array_equal(tie_keys(3, rows), tie_keys(4, rows))
    np.testing.assert_array_equal(tie_keys(-1, rows[:5]), tie_keys(2**64 - 1, rows[:5]))


def test_cap_looks_past_the_first_prefix() -> None:
    # The 6 best are all class 0; with a cap of 2 the batch must reach far down the ranking.
    scores = np.arange(10, dtype=np.float64)
    classes = np.array([0] * 8 + [1, 2])
    assert select(scores, np.arange(10), 4, 0, classes, 2).tolist() == [0, 1, 8, 9]
    assert select(scores, np.arange(10), 6, 0, classes, 2).tolist() == [0, 1, 8, 9]  # all there is
