"""Entropy: the score is the negated predictive entropy, so the most uncertain row comes first."""

from __future__ import annotations

import numpy as np

from labelloop.scorer.strategies.base import PerRowStrategy


def entropy_scores(probs: np.ndarray) -> np.ndarray:
    """sum(p * log p) per row, with 0 * log 0 = 0, in float64."""
    p = np.asarray(probs, dtype=np.float64)
    logs = np.log(p, where=p > 0, out=np.zeros_like(p))
    return np.einsum("ij,ij->i", p, logs)


class Entropy(PerRowStrategy):
    formula = staticmethod(entropy_scores)
