"""What a batch selector is: the selector's extension point, choosing a whole batch at once.

A batch selector gets every row's score, the rows that may be chosen, the request's rules and (when it
needs them) the rows' embeddings, and returns the batch, best first. Choosing the batch as a whole
(rather than ranking rows one by one) lets a selector weigh rows against each other, e.g. spread the
batch over clusters of embeddings.

Rows are numbered as the selector sees them: the unlabeled examples first, then (with allow_relabel)
the labeled ones, so row >= BatchRequest.unlabeled_rows is a labeled example chosen for another label.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class BatchNeeds:
    """What a batch selector reads; the selector validates requests by it."""

    # Reads unlabeled_scores (and labeled_scores with allow_relabel). False makes them optional: the
    # rows and example ids then come from unlabeled_embeddings, and every row's score is 0.
    scores: bool = True
    # Reads the rows' embeddings (unlabeled_embeddings, and labeled_embeddings for labeled rows):
    # requests without them are refused naming the field.
    embeddings: bool = False


class Embeddings(Protocol):
    """The embeddings of a request's rows (same numbering as BatchRequest.scores), read on demand:
    a pool of millions does not fit in memory, so a selector reads only the rows it needs."""

    @property
    def rows(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def read(self, rows: np.ndarray) -> np.ndarray:
        """float32 [len(rows), dim] embeddings of the given rows, in the given order."""
        ...

    def chunks(self, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, float32 rows) of rows 0..stop-1, consecutive chunks in order."""
        ...


@dataclass(frozen=True)
class ArrayEmbeddings:
    """Embeddings held in memory (small pools, labeled examples, tests)."""

    values: np.ndarray  # [rows, dim]
    chunk_rows: int = 65536

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.values[rows], dtype=np.float32)

    def chunks(self, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, stop, self.chunk_rows):
            yield start, np.asarray(self.values[start : min(stop, start + self.chunk_rows)], np.float32)


@dataclass(frozen=True)
class BatchRequest:
    # float64, one per row: the unlabeled rows, then (with allow_relabel) the labeled rows; all 0
    # when the method does not need scores and the request gave none.
    scores: np.ndarray
    # int64 rows that may be chosen (excluded examples left out), ascending.
    candidates: np.ndarray
    batch_size: int
    # Breaks ties (and seeds any clustering): the same seed gives the same batch.
    seed: int
    # At most this many rows per predicted class; 0 means no cap.
    max_per_class: int = 0
    # int64 predicted class of every row; given when max_per_class is set.
    classes: np.ndarray | None = None
    # The embeddings of every row; given when the method needs embeddings.
    embeddings: Embeddings | None = None
    # Embeddings of every labeled example (whether or not they compete for relabeling), when the
    # request gave labeled_embeddings: which parts of the space are labeled already.
    labeled_embeddings: np.ndarray | None = None
    # How many of the rows are unlabeled examples; None means all of them.
    unlabeled_rows: int | None = None

    @property
    def unlabeled_count(self) -> int:
        return len(self.scores) if self.unlabeled_rows is None else self.unlabeled_rows


class BatchSelector(Protocol):
    """A batch selection method. Implementations are stateless."""

    needs: BatchNeeds

    def select(self, request: BatchRequest) -> np.ndarray:
        """int64 rows of the batch (a subset of request.candidates), best first, at most batch_size:
        fewer only when fewer candidates are eligible."""
        ...
