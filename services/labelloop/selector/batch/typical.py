"""Typical batches: TypiClust (Hacohen, Dekel and Weinshall, "Active learning on a budget", ICML 2022).

While labels are few, a model's uncertainty is a poor guide; examples that are typical of the
regions of the data nobody has labeled yet teach more. Scores are not read. This method
1. clusters the pool's embeddings (plus the labeled examples', when given) with k-means into
   min(covered + batch_size, MAX_CLUSTERS) clusters, where `covered` counts the labeled examples and
   the excluded (pending) ones (clustering.py: seeded k-means, mini-batch above 10,000 rows); above
   FIT_SAMPLE rows it fits on a seeded sample and assigns every row chunk by chunk;
2. counts per cluster the labeled and pending examples it holds (its coverage) and orders clusters
   by coverage, fewest first, then by size, largest first (as the reference implementation,
   avihu111/TypiClust, does), setting aside clusters of MIN_CLUSTER_SIZE rows or fewer (outliers)
   unless nothing else is left;
3. walks the clusters in that order, round robin while the batch is not full, taking from each its
   most typical eligible member: typicality = 1 / mean Euclidean distance to its NEIGHBOURS nearest
   neighbours within the cluster (on a seeded sample of at most KNN_SAMPLE members).
The batch is in pick order (most useful first); its reported scores are those given, or 0.
Only new examples are chosen (relabel rows are ignored: typicality says nothing about another
label). With max_per_class, a member whose predicted class is full is passed over.
Cost on a pool of N rows of d dimensions: one pass to read the fit sample, k-means on at most
FIT_SAMPLE rows, one pass assigning N rows to the clusters (N x clusters x d multiply-adds), and one
pass reading the chosen clusters' sampled members.
"""

from __future__ import annotations

import numpy as np

from labelloop.selector.batch.base import BatchNeeds, BatchRequest, Embeddings
from labelloop.selector.batch.clustering import Clusters
from labelloop.selector.batch.lowest_scores import smallest

FIT_SAMPLE = 50_000  # rows k-means is fitted on; a larger pool is assigned afterwards
MAX_CLUSTERS = 500  # the reference implementation's cap
MIN_CLUSTER_SIZE = 5  # clusters this small are outliers, visited last (the reference drops them)
NEIGHBOURS = 20  # k of the k nearest neighbours (the reference's K_NN)
KNN_SAMPLE = 1000  # members per cluster the typicality is computed on
_SAMPLE_STREAM = 7  # the seed's random stream for the fit sample


def typicality(rows: np.ndarray) -> np.ndarray:
    """1 / mean Euclidean distance to the NEIGHBOURS nearest other rows (fewer in small clusters)."""
    n = len(rows)
    if n == 1:
        return np.ones(1)
    k = min(NEIGHBOURS, max(1, n // 2))
    x = rows.astype(np.float64)
    squared = np.einsum("ij,ij->i", x, x)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * x @ x.T, 0))
    np.fill_diagonal(distances, np.inf)  # a row is not its own neighbour
    nearest = np.partition(distances, k - 1, axis=1)[:, :k]
    return 1 / (nearest.mean(axis=1) + 1e-8)


def _assign(clusters: Clusters, embeddings: Embeddings, rows: int) -> np.ndarray:
    out = np.empty(rows, dtype=np.int64)
    for start, chunk in embeddings.chunks(rows):
        out[start : start + len(chunk)] = clusters.assign(chunk)
    return out


class Typical:
    """The most typical member of each of the least covered, largest embedding clusters."""

    needs = BatchNeeds(scores=False, embeddings=True)

    def select(self, request: BatchRequest) -> np.ndarray:
        embeddings = request.embeddings
        assert embeddings is not None  # the selector checks needs.embeddings
        pool_rows = request.unlabeled_count
        candidates = request.candidates[request.candidates < pool_rows]
        if not len(candidates):
            return np.zeros(0, dtype=np.int64)
        labeled = request.labeled_embeddings
        if labeled is None:
            labeled = np.zeros((0, embeddings.dim), dtype=np.float32)
        pending = np.setdiff1d(np.arange(pool_rows), candidates, assume_unique=True)

        rng = np.random.default_rng([request.seed % 2**64, _SAMPLE_STREAM])
        sampled = pool_rows > FIT_SAMPLE
        sample = np.arange(pool_rows)
        if sampled:
            sample = np.sort(rng.choice(pool_rows, FIT_SAMPLE, replace=False))
        fit_rows = np.concatenate([embeddings.read(sample), labeled.astype(np.float32)])
        count = min(len(labeled) + len(pending) + request.batch_size, MAX_CLUSTERS, len(fit_rows))
        fitted = Clusters(fit_rows, count, request.seed)
        # The fit's own labels when it saw every row, else one more pass over the pool.
        clusters = _assign(fitted, embeddings, pool_rows) if sampled else fitted.labels[:pool_rows]
        labeled_clusters = fitted.assign(labeled) if sampled else fitted.labels[pool_rows:]

        coverage = np.bincount(labeled_clusters, minlength=count) + np.bincount(
            clusters[pending], minlength=count
        )
        sizes = np.bincount(clusters, minlength=count) + np.bincount(labeled_clusters, minlength=count)
        open_clusters = np.flatnonzero(np.bincount(clusters[candidates], minlength=count))
        outlier = sizes[open_clusters] <= MIN_CLUSTER_SIZE
        # Outlier clusters last, then fewest labeled/pending first, then the largest.
        order = open_clusters[np.lexsort((-sizes[open_clusters], coverage[open_clusters], outlier))]
        return self._pick(request, embeddings, candidates, clusters[candidates], order)

    def _pick(
        self,
        request: BatchRequest,
        embeddings: Embeddings,
        candidates: np.ndarray,
        candidate_clusters: np.ndarray,
        order: np.ndarray,
    ) -> np.ndarray:
        """Round robin over the clusters in `order`, a block of batch_size clusters at a time, each
        giving its most typical member whose class has room."""
        by_cluster = np.argsort(candidate_clusters, kind="stable")
        bounds = np.searchsorted(candidate_clusters[by_cluster], np.arange(int(order.max()) + 2))
        cap, classes = request.max_per_class, request.classes
        taken: dict[int, int] = {}
        chosen: list[int] = []
        for first in range(0, len(order), request.batch_size):
            block = order[first : first + request.batch_size]
            members = [candidates[by_cluster[bounds[c] : bounds[c + 1]]] for c in block.tolist()]
            members = [m[smallest(np.zeros(len(m)), m, KNN_SAMPLE, request.seed)] for m in members]
            values = embeddings.read(np.concatenate(members))
            queues, offset = [], 0
            for m in members:
                ranks = np.argsort(-typicality(values[offset : offset + len(m)]), kind="stable")
                queues.append(m[ranks].tolist())
                offset += len(m)
            while len(chosen) < request.batch_size and any(queues):
                for queue in queues:
                    while queue and len(chosen) < request.batch_size:
                        row = queue.pop(0)
                        cls = int(classes[row]) if classes is not None and cap > 0 else -1
                        if cls < 0 or taken.get(cls, 0) < cap:
                            taken[cls] = taken.get(cls, 0) + 1
                            chosen.append(row)
                            break
            if len(chosen) == request.batch_size:
                break
        return np.asarray(chosen, dtype=np.int64)
