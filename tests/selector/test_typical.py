"""BATCH_METHOD_TYPICAL (TypiClust): the most typical member of the largest uncovered clusters."""

from __future__ import annotations

import numpy as np
import pytest
from labelloop.selector.batch import typical
from labelloop.selector.batch.base import ArrayEmbeddings, BatchRequest
from labelloop.selector.batch.typical import Typical
from sklearn.neighbors import NearestNeighbors

from tests.selector.blobs import blobs


def request(embeddings: np.ndarray, batch_size: int, seed: int = 0, **changes) -> BatchRequest:
    fields = {
        "scores": np.zeros(len(embeddings)),
        "candidates": np.arange(len(embeddings)),
        "embeddings": ArrayEmbeddings(embeddings, chunk_rows=64),
        **changes,
    }
    return BatchRequest(batch_size=batch_size, seed=seed, **fields)


def densest(points: np.ndarray, rows: np.ndarray, k: int = 20) -> int:
    """The row of `rows` with the smallest mean distance to its k nearest neighbours among `rows`,
    computed independently with scikit-learn."""
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points[rows]).kneighbors(points[rows])
    return int(rows[np.argmin(distances[:, 1:].mean(axis=1))])


def with_outliers(sizes: list[int], dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Blobs whose first 3 members are moved 4 spreads out from the centre: far from the rest of
    their blob, yet nearer to it than to any other blob."""
    points, blob = blobs(sizes, dim=dim)
    for b in range(len(sizes)):
        rows = np.flatnonzero(blob == b)[:3]
        centre = points[blob == b].mean(axis=0)
        direction = np.random.default_rng(b).normal(size=(3, points.shape[1]))
        points[rows] = centre + 4 * direction / np.linalg.norm(direction, axis=1, keepdims=True) * 3
    return points, blob


@pytest.mark.parametrize("seed", range(3))
def test_picks_the_densest_member_of_each_cluster_never_an_outlier(seed: int) -> None:
    points, blob = with_outliers([80, 60, 40])
    batch = Typical().select(request(points, 3, seed))
    # Largest cluster first; each pick the densest of its blob, as scikit-learn's kNN says.
    assert blob[batch].tolist() == [0, 1, 2]
    assert batch.tolist() == [densest(points, np.flatnonzero(blob == b)) for b in range(3)]
    outliers = [int(r) for b in range(3) for r in np.flatnonzero(blob == b)[:3]]
    assert not set(batch.tolist()) & set(outliers)


def test_clusters_with_labeled_or_pending_examples_are_skipped() -> None:
    points, blob = blobs([80, 60, 50, 40])
    assert blob[Typical().select(request(points, 4))].tolist() == [0, 1, 2, 3]  # largest first
    # One labeled example in blob 0: 1 + 3 clusters, blob 0's is covered.
    labeled = points[blob == 0][:1] + 0.1
    batch = Typical().select(request(points, 3, labeled_embeddings=labeled))
    assert blob[batch].tolist() == [1, 2, 3]
    # A pending (excluded) example covers its cluster as a labeled one does.
    pending = int(np.flatnonzero(blob == 1)[0])
    candidates = np.setdiff1d(np.arange(len(blob)), [pending])
    batch = Typical().select(request(points, 2, labeled_embeddings=labeled, candidates=candidates))
    assert blob[batch].tolist() == [2, 3]


def test_round_robin_when_the_batch_outnumbers_the_clusters() -> None:
    points, blob = blobs([30, 20])
    batch = Typical().select(request(points, 2, max_per_class=0))
    assert blob[batch].tolist() == [0, 1]
    bigger = Typical().select(request(points, 5))
    assert len(set(bigger.tolist())) == 5
    assert np.bincount(blob[bigger], minlength=2).min() >= 1  # both blobs, not five of the largest


def test_max_per_class_and_relabel_rows() -> None:
    points, blob = blobs([80, 60, 40])
    classes = np.where(blob == 2, 1, 0)  # blobs 0 and 1 predict class 0
    batch = Typical().select(request(points, 3, max_per_class=1, classes=classes))
    assert np.bincount(classes[batch]).tolist() == [1, 1]
    # Rows from 150 on are labeled examples (allow_relabel): typicality never picks them.
    batch = Typical().select(request(points, 5, unlabeled_rows=150))
    assert batch.max() < 150


@pytest.mark.parametrize("dim", [8, 1280])
def test_large_pools_fit_on_a_sample_and_assign_chunk_by_chunk(
    monkeypatch: pytest.MonkeyPatch, dim: int
) -> None:
    monkeypatch.setattr(typical, "FIT_SAMPLE", 60)
    points, blob = with_outliers([200, 150, 100], dim)
    first = Typical().select(request(points, 3, seed=4))
    assert blob[first].tolist() == [0, 1, 2]
    assert first.tolist() == Typical().select(request(points, 3, seed=4)).tolist()
    labeled = points[blob == 1][:2]
    assert blob[Typical().select(request(points, 2, labeled_embeddings=labeled))].tolist() == [0, 2]


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours() -> None:
    rows = np.array([[0.0], [1.0], [3.0], [7.0]])
    # k = min(20, 4 // 2) = 2: neighbours at distances (1, 3), (1, 2), (2, 3), (4, 6).
    np.testing.assert_allclose(typical.typicality(rows), 1 / (np.array([2.0, 1.5, 2.5, 5.0]) + 1e-8))
    assert typical.typicality(rows[:1]).tolist() == [1.0]
