"""Random: uniform scores from a seeded generator, the baseline every strategy is measured against."""

from __future__ import annotations

import numpy as np

from labelloop.scorer.strategies.base import FitInputs, Fitted, Needs, PoolChunk

# Separate streams for pool and labeled rows: adding a labeled set leaves a seed's pool scores unchanged.
POOL_STREAM, LABELED_STREAM = 0, 1


def seeded_stream(seed: int, stream: int) -> np.random.Generator:
    """The generator of one stream of a seed. Negative int64 seeds are folded into [0, 2**64)."""
    return np.random.default_rng([seed % 2**64, stream])


def random_scores(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Uniform [0, 1). Drawing chunk after chunk from one generator gives the same stream as one draw,
    so the scores depend on the seed only, not on the chunk size."""
    return rng.random(rows)


class Random:
    # The pool's stream is drawn chunk after chunk, in order.
    needs = Needs(sequential=True)

    def fit(self, inputs: FitInputs) -> Fitted[np.random.Generator]:
        labeled = None
        if inputs.labeled:
            labeled = random_scores(seeded_stream(inputs.seed, LABELED_STREAM), inputs.labeled_rows)
        return Fitted(seeded_stream(inputs.seed, POOL_STREAM), labeled)

    def score(self, state: np.random.Generator, chunk: PoolChunk) -> np.ndarray:
        return random_scores(state, chunk.rows)
