"""Diverse batches: the most useful candidates by score, spread over clusters of their embeddings.

Top-k by uncertainty tends to pick near-duplicates: one confusion of the model, many times over. This
method (Cluster-Margin style, Citovsky et al. 2021; like the diverse mini-batch of Zhdanov 2019)
1. takes the CANDIDATE_FACTOR x batch_size lowest-scored eligible rows (relabel rows included with
   allow_relabel, excluded rows never);
2. clusters their embeddings with k-means into batch_size clusters (clustering.py: k-means++ seeded
   from the request's seed, one initialisation: the same request gives the same batch);
3. takes from each cluster its lowest-scored member, then orders the batch by score.
With max_per_class, a cluster gives its lowest-scored member whose predicted class has room, and a
cluster without one gives nothing. Slots left empty (duplicate embeddings giving fewer clusters, or
the class cap) are filled down the whole ranking, lowest scores first, honouring the cap.

Only the candidates' embeddings are read (a few thousand rows, with ranged reads), so the cost does
not depend on the pool's size beyond reading its scores.
"""

from __future__ import annotations

import numpy as np

from labelloop.selector.batch.base import BatchNeeds, BatchRequest
from labelloop.selector.batch.clustering import Clusters
from labelloop.selector.batch.lowest_scores import smallest, tie_keys

# How many lowest-scored candidates are clustered per batch slot. 10 follows Cluster-Margin's
# k_m = 10 k setting: enough that clusters differ, few enough that all stay clearly uncertain.
CANDIDATE_FACTOR = 10


def representatives(labels: np.ndarray, classes: np.ndarray | None, max_per_class: int) -> np.ndarray:
    """Positions of each cluster's best member whose class has room, given the rows' cluster labels
    (and classes) in score order; in score order."""
    if classes is None or max_per_class <= 0:
        _, first = np.unique(labels, return_index=True)  # ranked order: first member is the best
        return np.sort(first)
    taken: dict[int, int] = {}
    done: set[int] = set()
    chosen = []
    for position, (cluster, cls) in enumerate(zip(labels.tolist(), classes.tolist(), strict=True)):
        if cluster in done or taken.get(cls, 0) >= max_per_class:
            continue
        done.add(cluster)
        taken[cls] = taken.get(cls, 0) + 1
        chosen.append(position)
    return np.asarray(chosen, dtype=np.int64)


def fill(request: BatchRequest, chosen: np.ndarray, need: int) -> np.ndarray:
    """Up to `need` more rows from the eligible ones not in `chosen`, lowest scores first, with the
    class cap counting the rows already chosen."""
    rest = np.setdiff1d(request.candidates, chosen, assume_unique=True)
    if need <= 0 or not len(rest):
        return np.zeros(0, dtype=np.int64)
    scores = request.scores[rest]
    if request.classes is None or request.max_per_class <= 0:
        return rest[smallest(scores, rest, need, request.seed)]
    counts = np.bincount(request.classes[chosen], minlength=int(request.classes.max()) + 1)
    prefix = need
    while True:  # the greedy walk over a prefix is exact once it fills the need (see lowest_scores)
        order = rest[smallest(scores, rest, prefix, request.seed)]
        taken = []
        room = counts.copy()
        for row in order.tolist():
            cls = int(request.classes[row])
            if room[cls] < request.max_per_class:
                room[cls] += 1
                taken.append(row)
                if len(taken) == need:
                    break
        if len(taken) == need or len(order) == len(rest):
            return np.asarray(taken, dtype=np.int64)
        prefix *= 2


class Diverse:
    """The lowest-scored candidates spread over k-means clusters of their embeddings."""

    needs = BatchNeeds(embeddings=True)

    def select(self, request: BatchRequest) -> np.ndarray:
        assert request.embeddings is not None  # the selector checks needs.embeddings
        eligible = request.candidates
        size = request.batch_size
        pool = eligible[smallest(request.scores[eligible], eligible, CANDIDATE_FACTOR * size, request.seed)]
        if len(pool) <= size or size == 1:  # nothing to spread: the lowest scores are the batch
            chosen = np.zeros(0, dtype=np.int64)
        else:
            labels = Clusters(request.embeddings.read(pool), size, request.seed).labels
            classes = None if request.classes is None else request.classes[pool]
            chosen = pool[representatives(labels, classes, request.max_per_class)]
        chosen = np.concatenate([chosen, fill(request, chosen, size - len(chosen))])
        order = np.lexsort((tie_keys(request.seed, chosen), request.scores[chosen]))
        return chosen[order]
