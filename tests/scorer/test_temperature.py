"""ActiveLab's labeled side computed once (temperature search) and its temperature path over the pool
block by block: both equal to cleanlab's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanlab.internal.multiannotator_utils import (
    compute_soft_cross_entropy,
    find_best_temp_scaler,
    temp_scale_pred_probs,
)
from cleanlab.multiannotator import get_active_learning_scores
from labelloop.scorer.strategies.activelab import BLOCK_ROWS, ActiveLabParams, fit_activelab, score_unlabeled
from labelloop.scorer.strategies.temperature import (
    empirical_label_distribution,
    find_best_temperature,
    soft_cross_entropy,
)

from tests.scorer.data import annotator_labels, probabilities


def dirichlet_pool(rng: np.random.Generator, rows: int, classes: int, alpha: float = 0.1) -> np.ndarray:
    """float32 rows like the benchmark's: peaked, with exact zeros and values below cleanlab's 1e-30
    clip floor."""
    gammas = rng.standard_gamma(alpha, size=(rows, classes)).astype(np.float32)
    gammas[:, 0] += np.float32(1e-6)
    gammas[rng.random(gammas.shape) < 0.05] = 0.0
    gammas[rng.random(gammas.shape) < 0.05] = np.float32(1e-35)
    return (gammas / gammas.sum(axis=1, dtype=np.float64)[:, np.newaxis]).astype(np.float32)


@pytest.mark.parametrize("classes", [3, 6, 40])
def test_label_distribution_is_cleanlabs_row_by_row_one(classes: int) -> None:
    """With 3 classes many rows hold every class (cleanlab's value_counts then puts counts in the
    classes' columns); with more, counts go to the first columns: both as cleanlab computes them."""
    rng = np.random.default_rng(classes)
    truth = rng.integers(0, classes, 300)
    labels = annotator_labels(rng, truth, classes, annotators=5, multi=True)
    labels[:40] = rng.integers(0, classes, (40, 5))  # rows with every annotator, some with all classes
    probs = probabilities(rng, truth, classes)

    distribution = empirical_label_distribution(labels, classes)

    assert np.array_equal(soft_cross_entropy(distribution, probs), compute_soft_cross_entropy(labels, probs))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("seed", "classes", "skill"),
    [(0, 6, 3.0), (1, 6, 0.2), (2, 20, 8.0), (3, 100, 1.0), (4, 3, 30.0)],
)
def test_best_temperature_is_cleanlabs(seed: int, classes: int, skill: float, dtype: type) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, 250)
    probs = probabilities(rng, truth, classes, skill=skill).astype(dtype)
    labels = annotator_labels(rng, truth, classes, annotators=4, multi=True)

    assert find_best_temperature(labels, probs) == find_best_temp_scaler(labels, probs)


@pytest.mark.filterwarnings("ignore")
def test_pool_of_many_blocks_with_a_temperature_matches_cleanlab() -> None:
    """float32 pool over several blocks, the clip floor exercised: cleanlab computes in float32 too."""
    rng = np.random.default_rng(11)
    classes = 100
    labeled = dirichlet_pool(rng, 300, classes)
    labels = annotator_labels(rng, labeled.argmax(axis=1), classes, annotators=3, multi=True)
    pool = dirichlet_pool(rng, 2 * BLOCK_ROWS + 77, classes)
    assert (pool == 0).any() and ((pool > 0) & (pool < 1e-30)).any()

    np.random.seed(0)
    _, ref = get_active_learning_scores(labels, labeled.copy(), pool.copy())
    params, _ = fit_activelab(labels, [labeled])

    assert params.temperatures[0] != 1.0
    np.testing.assert_allclose(score_unlabeled(params, [pool]), ref, rtol=1e-5, atol=1e-7)


def test_low_temperature_over_many_classes_keeps_its_precision() -> None:
    """p ** 10 for p near 1/20,000 underflows float32: those rows are summed again in float64."""
    rng = np.random.default_rng(5)
    classes = 20_000
    pool = rng.dirichlet(np.full(classes, 50.0), size=30).astype(np.float32)
    params = ActiveLabParams(classes, temperatures=(0.1,), model_weights=(1.0,), avg_annotator_weight=1.0)

    got = score_unlabeled(params, [pool])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        top = temp_scale_pred_probs(pool.astype(np.float64), 0.1).max(axis=1)
    np.testing.assert_allclose(got, (top + 1 / classes) / 2, rtol=1e-5)
