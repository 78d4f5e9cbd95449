"""BATCH_METHOD_DIVERSE: the lowest-scored candidates spread over k-means clusters of their embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from labelloop.selector.batch.base import ArrayEmbeddings, BatchRequest
from labelloop.selector.batch.diverse import CANDIDATE_FACTOR, Diverse
from labelloop.selector.batch.lowest_scores import LowestScores

from tests.selector.blobs import blobs


def request(
    scores: np.ndarray, embeddings: np.ndarray, batch_size: int, seed: int = 0, **changes
) -> BatchRequest:
    fields = {"candidates": np.arange(len(scores)), "embeddings": ArrayEmbeddings(embeddings), **changes}
    return BatchRequest(scores, batch_size=batch_size, seed=seed, **fields)


def one_confusion(dim: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five blobs of 40; blob 0 holds the 40 lowest scores, each other blob has 3 low ones (0.5-0.6)
    and the rest high, so the 50 lowest scores reach every blob."""
    points, blob = blobs([40] * 5, dim=dim)
    rng = np.random.default_rng(1)
    scores = 0.8 + 0.2 * rng.random(len(blob))
    scores[blob == 0] = np.linspace(0.0, 0.4, 40)
    for b in range(1, 5):
        scores[np.flatnonzero(blob == b)[:3]] = 0.5 + 0.1 * rng.random(3)
    return points, blob, scores


@pytest.mark.parametrize(("seed", "dim"), [(0, 8), (1, 8), (2, 8), (3, 8), (0, 1280), (1, 1280)])
def test_spreads_the_batch_where_lowest_scores_repeat_one_blob(seed: int, dim: int) -> None:
    """Wide embeddings (1,280-d) go through the random projection, narrow ones are clustered as they are."""
    points, blob, scores = one_confusion(dim)
    lowest = LowestScores().select(request(scores, points, 5, seed))
    assert blob[lowest].tolist() == [0, 0, 0, 0, 0]

    batch = Diverse().select(request(scores, points, 5, seed))
    # One per blob, each the blob's lowest-scored candidate, the batch in score order.
    expected = [int(np.flatnonzero(blob == b)[np.argmin(scores[blob == b])]) for b in range(5)]
    assert batch.tolist() == sorted(expected, key=lambda r: scores[r])
    assert batch.tolist() == Diverse().select(request(scores, points, 5, seed)).tolist()


def test_only_the_lowest_scored_candidates_compete() -> None:
    """A blob whose best score is beyond the CANDIDATE_FACTOR x batch_size lowest gives nothing."""
    points, blob = blobs([60, 60, 20])
    # Blobs 0 and 1 take turns in the ranking; blob 2 holds the 20 highest scores.
    ranking = np.concatenate([np.arange(120).reshape(2, 60).T.ravel(), np.arange(120, 140)])
    scores = np.empty(140)
    scores[ranking] = np.linspace(0, 1, 140)
    batch = Diverse().select(request(scores, points, 4))
    assert len(batch) == 4 and 2 not in blob[batch].tolist()
    assert np.argsort(np.argsort(scores))[batch].max() < CANDIDATE_FACTOR * 4
    assert set(blob[batch].tolist()) == {0, 1}  # still spread over the blobs within reach


def test_excluded_rows_never_and_relabel_rows_compete() -> None:
    points, blob, scores = one_confusion()
    best = [int(np.flatnonzero(blob == b)[np.argmin(scores[blob == b])]) for b in range(5)]
    candidates = np.setdiff1d(np.arange(len(scores)), best[:1])  # blob 0's best is pending
    batch = Diverse().select(request(scores, points, 5, candidates=candidates, unlabeled_rows=150))
    assert best[0] not in batch.tolist() and len(set(blob[batch].tolist())) == 5
    # Rows from 150 on are labeled examples competing for another label: blob 4's best is one.
    assert best[4] >= 150 and best[4] in batch.tolist()


def test_max_per_class_is_respected_and_the_batch_filled() -> None:
    points, blob, scores = one_confusion()
    classes = np.where(blob < 3, 0, 1)  # blobs 0-2 predict class 0, blobs 3-4 class 1
    batch = Diverse().select(request(scores, points, 5, max_per_class=2, classes=classes))
    assert len(batch) == 4  # 2 of class 0 and 2 of class 1: nothing else may come in
    assert np.bincount(classes[batch]).tolist() == [2, 2]
    uncapped = Diverse().select(request(scores, points, 5, max_per_class=3, classes=classes))
    assert len(uncapped) == 5 and np.bincount(classes[uncapped]).max() <= 3


def test_duplicates_and_small_pools_fill_with_the_lowest_scores() -> None:
    scores = np.array([0.5, 0.1, 0.4, 0.2, 0.3, 0.9, 0.8, 0.7])
    same = np.ones((8, 3), dtype=np.float32)  # one distinct point: one cluster
    assert Diverse().select(request(scores, same, 3)).tolist() == [1, 3, 4]
    points, _ = blobs([4, 4])
    assert Diverse().select(request(scores, points, 10)).tolist() == [1, 3, 4, 2, 0, 7, 6, 5]
    assert Diverse().select(request(scores, points, 2, candidates=np.zeros(0, np.int64))).tolist() == []
