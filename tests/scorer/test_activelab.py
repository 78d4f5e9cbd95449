"""ActiveLab split into fitted numbers + chunked unlabeled scoring equals cleanlab's one-shot call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanlab.multiannotator import get_active_learning_scores, get_active_learning_scores_ensemble
from labelloop.scorer.strategies.activelab import ActiveLabParams, fit_activelab, score_unlabeled

from tests.scorer.data import annotator_labels, probabilities

K = 6


def chunked(params: ActiveLabParams, pools: list[np.ndarray], rows: int) -> np.ndarray:
    """Scores a pool chunk by chunk, as the service does."""
    n = len(pools[0])
    return np.concatenate(
        [score_unlabeled(params, [p[s : s + rows] for p in pools]) for s in range(0, n, rows)]
    )


def cleanlab(labels: np.ndarray | None, labeled: list[np.ndarray], pool: list[np.ndarray]):
    """cleanlab's reference (on copies: the ensemble variant scales its inputs in place)."""
    np.random.seed(0)  # cleanlab breaks its last-resort ties with the global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(pool) == 1:
            return get_active_learning_scores(labels, labeled[0].copy() if labeled else None, pool[0].copy())
        return get_active_learning_scores_ensemble(
            labels, np.stack(labeled) if labeled else None, np.stack(pool)
        )


def fitted(
    labels: np.ndarray | None, labeled: list[np.ndarray], models: int
) -> tuple[ActiveLabParams, np.ndarray]:
    if labels is None:
        return ActiveLabParams.unlabeled_only(K, models), np.array([])
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_activelab(labels, labeled)


@pytest.mark.parametrize("models", [1, 3])
@pytest.mark.parametrize("case", ["unlabeled_only", "single_annotator", "multi_annotator"])
def test_equals_cleanlab(case: str, models: int) -> None:
    rng = np.random.default_rng(7)
    truth_labeled, truth_pool = rng.integers(0, K, 150), rng.integers(0, K, 403)
    labeled = [probabilities(rng, truth_labeled, K) for _ in range(models)]
    pool = [probabilities(rng, truth_pool, K) for _ in range(models)]
    labels = None
    if case != "unlabeled_only":
        labels = annotator_labels(rng, truth_labeled, K, annotators=4, multi=case == "multi_annotator")
        assert np.isnan(labels).any()

    if labels is None:
        labeled = []
    ref_labeled, ref_pool = cleanlab(labels, labeled, pool)
    params, got_labeled = fitted(labels, labeled, models)

    if case == "multi_annotator":
        assert any(t != 1.0 for t in params.temperatures)  # the temperature-scaling path is exercised
    np.testing.assert_allclose(got_labeled, ref_labeled, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked(params, pool, rows=7), ref_pool, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked(params, pool, rows=len(pool[0])), ref_pool, rtol=0, atol=1e-12)


@pytest.mark.parametrize("multi", [False, True])
def test_float32_inputs_match_cleanlab_to_1e_6(multi: bool) -> None:
    """Stored probabilities are float32; cleanlab computes in float32 then, we in float64."""
    rng = np.random.default_rng(3)
    truth_labeled, truth_pool = rng.integers(0, K, 120), rng.integers(0, K, 500)
    labeled = [probabilities(rng, truth_labeled, K).astype(np.float32)]
    pool = [probabilities(rng, truth_pool, K).astype(np.float32)]
    labels = annotator_labels(rng, truth_labeled, K, annotators=3, multi=multi)
    ref_labeled, ref_pool = cleanlab(labels, labeled, pool)
    params, got_labeled = fitted(labels, labeled, 1)
    np.testing.assert_allclose(got_labeled, ref_labeled, rtol=0, atol=1e-6)
    np.testing.assert_allclose(chunked(params, pool, rows=64), ref_pool, rtol=0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Annotators do not agree")
def test_ensemble_vote_ties_break_on_mean_probability() -> None:
    """Two models disagreeing on the top class: the vote ties and cleanlab picks the class with the
    higher mean probability; so must we, in every chunk."""
    a = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    b = np.array([[0.1, 0.5, 0.4], [0.45, 0.1, 0.45]])
    _, ref = get_active_learning_scores_ensemble(pred_probs_unlabeled=np.stack([a, b]))
    got = score_unlabeled(ActiveLabParams(3, (1.0, 1.0), (1.0, 1.0), 1.0), [a, b])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
