"""Margin: the score is the gap between the two highest probabilities, so the closest call comes first."""

from __future__ import annotations

import numpy as np

from labelloop.scorer.strategies.base import PerRowStrategy


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """Top probability minus the runner-up (the top one alone with a single class), as float64."""
    if probs.shape[1] == 1:
        return probs[:, 0].astype(np.float64)
    top2 = np.partition(probs, probs.shape[1] - 2, axis=1)[:, -2:].astype(np.float64)
    return top2[:, 1] - top2[:, 0]


class Margin(PerRowStrategy):
    formula = staticmethod(margin_scores)
