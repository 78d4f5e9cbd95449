"""Seeded k-means for the batch selectors, fast enough for thousands of 1,280-d rows on a few cores.

k-means++ seeding reads every row once per centre, so on wide embeddings it is bound by memory
traffic (10,000 x 1,280 float64 rows are 100 MB, read a thousand times for a thousand clusters).
Rows are therefore first multiplied by a seeded Gaussian random projection to PROJECTED_DIM
dimensions (Johnson-Lindenstrauss: distances kept within about 10%, plenty to spread a batch) and
clustered in float64 (scikit-learn's float32 distances take a slow upcasting path). Lloyd iterations
are capped: the clusters only need to spread a batch, not to converge to the last decimal.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning

PROJECTED_DIM = 128
MAX_ITER = 30  # Lloyd iterations (full k-means) or passes over the rows (mini-batch)
FULL_KMEANS_LIMIT = 10_000  # up to this many rows full k-means, above it mini-batch k-means


class Clusters:
    """k-means clusters of some rows, deterministic for a seed; assigns further rows to them."""

    def __init__(self, rows: np.ndarray, count: int, seed: int):
        random_state = seed % 2**32
        dim = rows.shape[1]
        self.projection: np.ndarray | None = None
        if dim > PROJECTED_DIM:
            rng = np.random.default_rng([random_state, dim])
            self.projection = rng.normal(size=(dim, PROJECTED_DIM)) / np.sqrt(PROJECTED_DIM)
        x = self._projected(rows)
        self.model: KMeans | MiniBatchKMeans
        if len(x) <= FULL_KMEANS_LIMIT:
            self.model = KMeans(count, n_init=1, max_iter=MAX_ITER, random_state=random_state)
        else:
            self.model = MiniBatchKMeans(
                count, n_init=1, batch_size=4096, max_iter=MAX_ITER, random_state=random_state
            )
        with warnings.catch_warnings():
            # Duplicate rows can leave fewer distinct clusters than asked: callers fill the batch.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(x)
        self.labels = np.asarray(self.model.labels_, dtype=np.int64)  # of the rows fitted on

    def assign(self, rows: np.ndarray) -> np.ndarray:
        """The nearest cluster of each row."""
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self.model.predict(self._projected(rows)), dtype=np.int64)

    def _projected(self, rows: np.ndarray) -> np.ndarray:
        x = rows.astype(np.float64)
        return x if self.projection is None else x @ self.projection
