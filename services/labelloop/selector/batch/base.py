"""What a batch selector is: the selector's extension point, choosing a whole batch at once.

A batch selector gets every row's score, the rows that may be chosen and the request's rules, and
returns the batch, best first. Choosing the batch as a whole (rather than ranking rows one by one)
leaves room for selectors that weigh rows against each other, e.g. for diversity over embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class BatchNeeds:
    """What a batch selector reads beyond the scores; the selector validates requests by it."""

    # Reads the examples' embeddings. No selector does yet and requests cannot carry them, so the
    # selector rejects such a plug-in until they can.
    embeddings: bool = False


@dataclass(frozen=True)
class BatchRequest:
    # float64, one per row: the unlabeled rows, then (with allow_relabel) the labeled rows.
    scores: np.ndarray
    # int64 rows that may be chosen (excluded examples left out), ascending.
    candidates: np.ndarray
    batch_size: int
    # Breaks ties: the same seed gives the same batch.
    seed: int
    # At most this many rows per predicted class; 0 means no cap.
    max_per_class: int = 0
    # int64 predicted class of every row; given when max_per_class is set.
    classes: np.ndarray | None = None


class BatchSelector(Protocol):
    """A batch selection method. Implementations are stateless."""

    needs: BatchNeeds

    def select(self, request: BatchRequest) -> np.ndarray:
        """int64 rows of the batch (a subset of request.candidates), best first, at most batch_size:
        fewer only when fewer candidates are eligible."""
        ...
