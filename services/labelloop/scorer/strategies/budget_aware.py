"""Budget-aware: margin while one annotator labels, ActiveLab once several do (LabelLoop's default).

The switch rule, decided on the request's labels_multiannotator (after the scorer drops annotator
columns without any label):
- margin while there are no labels, or there is one annotator column and every labeled example has
  exactly one label: with one annotator, a second label of an example would come from the same
  person (the simulated oracle gives none), so the only question is which new example is worth
  most: margin (the gap between the top two probabilities) ranks them. Labeled examples then score
  +inf: with allow_relabel they come last, after every new example;
- ActiveLab (cleanlab's, the `activelab` plug-in, unchanged) as soon as several annotators label or
  any example has more than one label: it weighs another label for a doubtful example against a new
  example, which is where its paper measures its gain (CIFAR-10H: random's accuracy with about half
  the annotations).
It needs labels_multiannotator as ActiveLab does: both labeled_probabilities and labels or neither.
Meant to be used with a typical first labeled set and diverse batches (BATCH_METHOD_DIVERSE), which
take care of the cold start and of near-duplicate batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from labelloop.scorer.strategies.activelab import ActiveLab, ActiveLabParams
from labelloop.scorer.strategies.base import FitInputs, Fitted, Needs, PoolChunk, mean_probabilities
from labelloop.scorer.strategies.margin import margin_scores


def several_annotators(labels_multiannotator: np.ndarray | None) -> bool:
    """The switch: True once labels come from more than one annotator column or an example has more
    than one label."""
    if labels_multiannotator is None or not len(labels_multiannotator):
        return False
    given = ~np.isnan(labels_multiannotator)
    return bool(given.any(axis=0).sum() > 1 or (given.sum(axis=1) > 1).any())


@dataclass(frozen=True)
class BudgetAwareState:
    activelab: ActiveLabParams | None  # None: the margin phase


class BudgetAware:
    needs = Needs(labels_multiannotator=True)

    def fit(self, inputs: FitInputs) -> Fitted[BudgetAwareState]:
        if several_annotators(inputs.labels_multiannotator):
            fitted = ActiveLab().fit(inputs)
            return Fitted(BudgetAwareState(fitted.state), fitted.labeled_scores)
        labeled = np.full(inputs.labeled_rows, np.inf) if inputs.labeled else None
        return Fitted(BudgetAwareState(None), labeled)

    def score(self, state: BudgetAwareState, chunk: PoolChunk) -> np.ndarray:
        if state.activelab is not None:
            return ActiveLab().score(state.activelab, chunk)
        return margin_scores(mean_probabilities(chunk.probabilities))
