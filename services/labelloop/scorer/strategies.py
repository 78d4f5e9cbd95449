"""Scoring strategies. Lower scores are labeled first, for every strategy.

Each baseline scores one chunk of rows on its own, so pools are scored chunk by chunk. With several
models the baselines use the mean of the models' probabilities. ActiveLab lives in activelab.py:
its unlabeled scores also depend on numbers fitted once on the labeled set.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labelloop.core.errors import InvalidArgument
from labelloop.scorer.activelab import ActiveLabParams, fit_activelab, row_sums, score_unlabeled
from labelloop.v1 import common_pb2

Strategy = common_pb2.Strategy
ACTIVELAB = common_pb2.STRATEGY_ACTIVELAB
RANDOM = common_pb2.STRATEGY_RANDOM
LEAST_CONFIDENCE = common_pb2.STRATEGY_LEAST_CONFIDENCE
MARGIN = common_pb2.STRATEGY_MARGIN
ENTROPY = common_pb2.STRATEGY_ENTROPY

__all__ = [
    "ACTIVELAB",
    "ENTROPY",
    "LEAST_CONFIDENCE",
    "MARGIN",
    "RANDOM",
    "ActiveLabParams",
    "entropy_scores",
    "fit_activelab",
    "least_confidence_scores",
    "margin_scores",
    "mean_probabilities",
    "random_scores",
    "row_sums",
    "score_unlabeled",
    "strategy_name",
]


def strategy_name(strategy: int) -> str:
    """ "activelab", "random", ...; InvalidArgument for UNSPECIFIED or unknown values."""
    if strategy == common_pb2.STRATEGY_UNSPECIFIED or strategy not in Strategy.values():
        names = ", ".join(n for n in Strategy.keys() if n != "STRATEGY_UNSPECIFIED")  # noqa: SIM118
        raise InvalidArgument(f"strategy {strategy} is not a scoring strategy: choose one of {names}")
    return Strategy.Name(strategy).removeprefix("STRATEGY_").lower()


def mean_probabilities(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """One model's rows as they are; several models' rows averaged (in float64)."""
    if len(chunks) == 1:
        return chunks[0]
    total = np.zeros(chunks[0].shape, dtype=np.float64)
    for chunk in chunks:
        total += chunk
    return total / len(chunks)


def random_scores(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Uniform [0, 1). Drawing chunk after chunk from one generator gives the same stream as one draw,
    so the scores depend on the seed only, not on the chunk size."""
    return rng.random(rows)


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """The top probability: the least confident prediction comes first."""
    return np.take_along_axis(probs, probs.argmax(axis=1)[:, np.newaxis], axis=1)[:, 0].astype(np.float64)


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """Top probability minus the runner-up (the top one alone with a single class)."""
    if probs.shape[1] == 1:
        return probs[:, 0].astype(np.float64)
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:].astype(np.float64)
    return top2[:, 1] - top2[:, 0]


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """Negated entropy, sum(p * log p) with 0 * log 0 = 0: the most uncertain prediction comes first."""
    p = np.asarray(probs, dtype=np.float64)
    logs = np.log(p, where=p > 0, out=np.zeros_like(p))
    return np.einsum("ij,ij->i", p, logs)
