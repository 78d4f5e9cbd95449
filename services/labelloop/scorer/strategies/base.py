"""What a scoring strategy is: the one extension point of the scorer (like KServe's `Model`).

A strategy declares what it reads from a ScoreExamples request (`Needs`), fits once on the labeled side
(`fit`, which also scores the labeled examples when they are given) and then scores the pool one chunk
of rows at a time (`score`). The scorer opens and validates the inputs, reads what the strategy needs,
runs the chunks on a thread pool and writes the outputs; it never branches on which strategy it runs.
Lower scores are labeled first, for every strategy.

The pool's probabilities are always given (they define the pool's rows and example ids), one array per
model, rows validated (finite, non-negative, summing to 1) before a strategy sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np

State = TypeVar("State")


@dataclass(frozen=True)
class Needs:
    """What a strategy reads beyond the pool's probabilities; the scorer validates requests by it."""

    # Fits on (and scores) labeled_probabilities when a request gives them; False rejects them.
    labeled_probabilities: bool = True
    # Reads labels_multiannotator, which must then come with labeled_probabilities (both or neither);
    # False ignores them.
    labels_multiannotator: bool = False
    # Accepts one probability array per model (an ensemble); False rejects more than one.
    several_models: bool = True
    # Reads the examples' embeddings. No strategy does yet and requests cannot carry them, so the scorer
    # rejects such a strategy until they can.
    embeddings: bool = False
    # Keeps state from chunk to chunk (e.g. one random stream), so chunks are scored in order on one
    # thread: the scores then do not depend on the chunk size or the thread count.
    sequential: bool = False


@dataclass(frozen=True)
class FitInputs:
    """The labeled side of a request, read whole (labeled sets are small)."""

    num_classes: int
    num_models: int
    seed: int
    # One [rows, classes] array per model; empty when the request has no labeled_probabilities.
    labeled: list[np.ndarray] = field(default_factory=list)
    # float [rows, annotators], class indices with NaN for missing; only for strategies that need it,
    # and then present exactly when `labeled` is.
    labels_multiannotator: np.ndarray | None = None

    @property
    def labeled_rows(self) -> int:
        return len(self.labeled[0]) if self.labeled else 0


@dataclass(frozen=True)
class Fitted(Generic[State]):
    """What fit returns: the state the pool's chunks are scored with, and the labeled examples' scores
    (None when the request has no labeled examples)."""

    state: State
    labeled_scores: np.ndarray | None


@dataclass(frozen=True)
class PoolChunk:
    """Consecutive pool rows, the same rows in every model's array."""

    start: int  # the first row's index in the pool
    probabilities: Sequence[np.ndarray]  # one [rows, classes] array per model
    row_sums: Sequence[np.ndarray]  # each array's float64 row sums (computed by validation anyway)

    @property
    def rows(self) -> int:
        return len(self.probabilities[0])


class Strategy(Protocol[State]):
    """A scoring strategy. Implementations are stateless: per-request state lives in `Fitted.state`."""

    needs: Needs

    def fit(self, inputs: FitInputs) -> Fitted[State]:
        """Fits on the labeled side (or sets defaults without one) and scores the labeled rows."""
        ...

    def score(self, state: State, chunk: PoolChunk) -> np.ndarray:
        """float64 scores of one chunk of pool rows. Called from several threads at once unless
        `needs.sequential`; chunks then arrive in order."""
        ...


def mean_probabilities(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """One model's rows as they are; several models' rows averaged (in float64)."""
    if len(chunks) == 1:
        return chunks[0]
    total = np.zeros(chunks[0].shape, dtype=np.float64)
    for chunk in chunks:
        total += chunk
    return total / len(chunks)


class PerRowStrategy:
    """Base of strategies whose score of a row depends only on that row's probabilities, averaged over
    the models: subclasses set `formula`. Labeled rows are scored with the same formula."""

    needs = Needs()

    @staticmethod
    def formula(probs: np.ndarray) -> np.ndarray:
        """float64 scores of [rows, classes] probabilities, one per row."""
        raise NotImplementedError

    def fit(self, inputs: FitInputs) -> Fitted[None]:
        labeled = self.formula(mean_probabilities(inputs.labeled)) if inputs.labeled else None
        return Fitted(None, labeled)

    def score(self, state: None, chunk: PoolChunk) -> np.ndarray:
        return self.formula(mean_probabilities(chunk.probabilities))
