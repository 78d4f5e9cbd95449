"""Exact lowest-k selection with deterministic tie-breaking, without sorting the whole pool.

The plain functions `smallest` and `select` hold the algorithm; the `LowestScores` plug-in at the end
adapts them to the BatchSelector protocol.

The order is (score ascending, tie key ascending) where the tie key of row r is a seeded bijective
hash of r (splitmix64). Keys are distinct, so the order is total: the same seed always gives the same
batch, and another seed reshuffles equal scores. The k smallest are found with np.partition (O(n))
plus a scan for the rows tied with the k-th score, and only those k are then sorted.
"""

from __future__ import annotations

import numpy as np

from labelloop.selector.batch.base import BatchNeeds, BatchRequest

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64, so distinct inputs keep distinct keys."""
    x = x.copy()
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


def tie_keys(seed: int, rows: np.ndarray) -> np.ndarray:
    """The secondary sort key of each row: depends only on the seed and the row number."""
    offset = _splitmix64(np.array([seed % 2**64], dtype=np.uint64) * _GOLDEN)
    return _splitmix64(np.asarray(rows, dtype=np.uint64) + offset)  # uint64 arithmetic wraps


def smallest(scores: np.ndarray, rows: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Positions (into scores) of the `count` first candidates in (score, tie key of rows) order.

    scores: float64 scores of the candidates; rows: their row numbers, which the tie keys hash.
    Exact also when many candidates share the k-th score: those are ranked by tie key too.
    """
    n = len(scores)
    if count <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if count >= n:
        chosen = np.arange(n)
    else:
        threshold = np.partition(scores, count - 1)[count - 1]
        below = np.flatnonzero(scores < threshold)
        tied = np.flatnonzero(scores == threshold)
        need = count - len(below)
        if len(tied) > need:  # ties straddle the boundary: the smallest tie keys get in
            keys = tie_keys(seed, rows[tied])
            tied = tied[np.argpartition(keys, need - 1)[:need]]
        chosen = np.concatenate([below, tied])
    order = np.lexsort((tie_keys(seed, rows[chosen]), scores[chosen]))
    return chosen[order]


def select(
    scores: np.ndarray,
    rows: np.ndarray,
    batch_size: int,
    seed: int,
    classes: np.ndarray | None = None,
    max_per_class: int = 0,
) -> np.ndarray:
    """Positions of the batch, in order. With max_per_class, walks the order and skips a candidate
    whose predicted class (classes[position]) already has max_per_class picks."""
    if max_per_class <= 0 or classes is None:
        return smallest(scores, rows, batch_size, seed)
    prefix = batch_size
    while True:
        # The first `prefix` candidates in order; the greedy walk over them is exact as long as it
        # fills the batch, else look further (doubling keeps the total work O(n log n) at worst).
        order = smallest(scores, rows, prefix, seed)
        taken = order[_rank_within_class(classes[order]) < max_per_class]
        if len(taken) >= batch_size or len(order) == len(scores):
            return taken[:batch_size]
        prefix *= 2


def _rank_within_class(classes: np.ndarray) -> np.ndarray:
    """For each position, how many earlier positions have the same class."""
    by_class = np.argsort(classes, kind="stable")
    sorted_classes = classes[by_class]
    starts = np.flatnonzero(np.r_[True, sorted_classes[1:] != sorted_classes[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(classes)]))
    ranks = np.empty(len(classes), dtype=np.int64)
    ranks[by_class] = np.arange(len(classes)) - group_start
    return ranks


class LowestScores:
    """The batch_size lowest scores, ties broken by seed, at most max_per_class per predicted class."""

    needs = BatchNeeds()

    def select(self, request: BatchRequest) -> np.ndarray:
        candidates = request.candidates
        classes = None if request.classes is None else request.classes[candidates]
        positions = select(
            request.scores[candidates], candidates, request.batch_size, request.seed, classes,
            request.max_per_class,
        )  # fmt: skip
        return candidates[positions]
