"""Least confidence: the score is the top predicted probability, so the least confident row comes first."""

from __future__ import annotations

import numpy as np

from labelloop.scorer.strategies.base import PerRowStrategy


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """The top probability of each row, as float64."""
    return np.take_along_axis(probs, probs.argmax(axis=1)[:, np.newaxis], axis=1)[:, 0].astype(np.float64)


class LeastConfidence(PerRowStrategy):
    formula = staticmethod(least_confidence_scores)
