"""The Scorer through a real object store (local folder and S3): chunked reads, published outputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanlab.multiannotator import get_active_learning_scores, get_active_learning_scores_ensemble
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore, ObjectStore
from labelloop.scorer.scoring import Scorer
from labelloop.v1 import common_pb2 as c

from tests.scorer.data import annotator_labels, probabilities, put_array

K = 5


def pool_ids(n: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.mark.parametrize("models", [1, 2])
def test_activelab_through_store_equals_cleanlab(object_store: ObjectStore, models: int) -> None:
    rng = np.random.default_rng(11)
    truth_l, truth_u = rng.integers(0, K, 60), rng.integers(0, K, 200)
    labeled = [probabilities(rng, truth_l, K) for _ in range(models)]
    pool = [probabilities(rng, truth_u, K) for _ in range(models)]
    labels = annotator_labels(rng, truth_l, K, annotators=3, multi=True)
    u_refs = [put_array(object_store, f"in/u{m}.npy", p, pool_ids(200)) for m, p in enumerate(pool)]
    l_refs = [put_array(object_store, f"in/l{m}.npy", p, pool_ids(60, "l")) for m, p in enumerate(labeled)]
    labels_ref = put_array(object_store, "in/labels.npy", labels)

    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Scorer(object_store).score(
            c.STRATEGY_ACTIVELAB, u_refs, l_refs, labels_ref, object_store.uri("out/scores"), chunk_size=7
        )
        np.random.seed(0)
        if models == 1:
            ref_l, ref_u = get_active_learning_scores(labels, labeled[0], pool[0])
        else:
            ref_l, ref_u = get_active_learning_scores_ensemble(labels, np.stack(labeled), np.stack(pool))

    assert result.scored_count == 260
    assert result.unlabeled_scores.uri == object_store.uri("out/scores/unlabeled_scores.npy")
    assert result.unlabeled_scores.example_ids_uri == u_refs[0].example_ids_uri
    assert list(result.unlabeled_scores.shape) == [200] and result.unlabeled_scores.dtype == "float64"
    assert result.labeled_scores is not None
    assert result.labeled_scores.example_ids_uri == l_refs[0].example_ids_uri
    got_u = object_store.get_array(object_store.key_of(result.unlabeled_scores.uri))
    got_l = object_store.get_array(object_store.key_of(result.labeled_scores.uri))
    np.testing.assert_allclose(got_u, ref_u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_l, ref_l, rtol=0, atol=1e-12)


def test_activelab_unlabeled_only_float32(tmp_path) -> None:
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(5)
    pool = probabilities(rng, rng.integers(0, K, 300), K).astype(np.float32)
    ref = put_array(store, "in/u.npy", pool)
    result = Scorer(store).score(c.STRATEGY_ACTIVELAB, [ref], output_uri="out", chunk_size=64)
    assert result.labeled_scores is None and not store.exists("out/labeled_scores.npy")
    _, expected = get_active_learning_scores(pred_probs_unlabeled=pool.copy())
    np.testing.assert_allclose(store.get_array("out/unlabeled_scores.npy"), expected, rtol=0, atol=1e-6)


def _baseline_expected(strategy: int, p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    if strategy == c.STRATEGY_LEAST_CONFIDENCE:
        return top2[:, 1]
    if strategy == c.STRATEGY_MARGIN:
        return top2[:, 1] - top2[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nansum(p * np.log(p), axis=1)  # 0 * log 0 -> nan -> dropped


@pytest.mark.parametrize("strategy", [c.STRATEGY_LEAST_CONFIDENCE, c.STRATEGY_MARGIN, c.STRATEGY_ENTROPY])
def test_baselines_match_numpy_formulas(object_store: ObjectStore, strategy: int) -> None:
    rng = np.random.default_rng(2)
    pools = [probabilities(rng, rng.integers(0, K, 50), K) for _ in range(2)]
    labeled = probabilities(rng, rng.integers(0, K, 9), K)
    refs = [put_array(object_store, f"in/u{i}.npy", p) for i, p in enumerate(pools)]
    l_ref = put_array(object_store, "in/l.npy", labeled)
    scorer = Scorer(object_store)
    scorer.score(strategy, refs[:1], [l_ref], output_uri=object_store.uri("one"), chunk_size=7)
    np.testing.assert_allclose(
        object_store.get_array("one/unlabeled_scores.npy"), _baseline_expected(strategy, pools[0])
    )
    np.testing.assert_allclose(
        object_store.get_array("one/labeled_scores.npy"), _baseline_expected(strategy, labeled)
    )
    # Several models: the baselines score the mean probabilities.
    scorer.score(strategy, refs, output_uri=object_store.uri("two"), chunk_size=7)
    np.testing.assert_allclose(
        object_store.get_array("two/unlabeled_scores.npy"),
        _baseline_expected(strategy, (pools[0] + pools[1]) / 2),
    )


def test_lower_scores_mean_less_certain(tmp_path) -> None:
    store = LocalStore(tmp_path)
    probs = np.array([[1.0, 0.0, 0.0], [0.34, 0.33, 0.33], [0.6, 0.4, 0.0]])
    ref = put_array(store, "p.npy", probs)
    for strategy in (
        c.STRATEGY_ACTIVELAB,
        c.STRATEGY_LEAST_CONFIDENCE,
        c.STRATEGY_MARGIN,
        c.STRATEGY_ENTROPY,
    ):
        Scorer(store).score(strategy, [ref], output_uri=f"s{strategy}")
        scores = store.get_array(f"s{strategy}/unlabeled_scores.npy")
        assert np.argmin(scores) == 1 and np.argmax(scores) == 0, strategy


def test_random_is_reproducible_and_chunk_independent(tmp_path) -> None:
    store = LocalStore(tmp_path)
    rng = np.random.default_rng(0)
    ref = put_array(store, "p.npy", probabilities(rng, rng.integers(0, K, 100), K))
    l_ref = put_array(store, "l.npy", probabilities(rng, rng.integers(0, K, 10), K))
    scorer = Scorer(store)

    def run(out: str, seed: int, chunk: int, labeled: bool = False) -> np.ndarray:
        scorer.score(
            c.STRATEGY_RANDOM, [ref], [l_ref] if labeled else [], output_uri=out, seed=seed, chunk_size=chunk
        )
        return store.get_array(f"{out}/unlabeled_scores.npy")

    first = run("a", seed=42, chunk=7)
    np.testing.assert_array_equal(first, run("b", seed=42, chunk=0))
    np.testing.assert_array_equal(first, run("c", seed=42, chunk=13, labeled=True))
    assert not np.array_equal(first, run("d", seed=43, chunk=7))
    assert ((first >= 0) & (first < 1)).all() and len(np.unique(first)) == 100
    assert store.get_array("c/labeled_scores.npy").shape == (10,)


def test_bad_row_in_a_late_chunk_stores_nothing(object_store: ObjectStore) -> None:
    rng = np.random.default_rng(0)
    probs = probabilities(rng, rng.integers(0, K, 40), K)
    probs[37, 2] = np.nan  # in the last chunk: earlier chunks were already scored
    ref = put_array(object_store, "in/u.npy", probs)
    with pytest.raises(InvalidArgument, match="row 37 has NaN"):
        Scorer(object_store).score(c.STRATEGY_MARGIN, [ref], output_uri=object_store.uri("out"), chunk_size=8)
    assert list(object_store.list("out")) == []


def test_of_several_bad_chunks_the_first_bad_row_is_named(object_store: ObjectStore) -> None:
    """Chunks are validated on the scoring threads, several at a time: the error still names the
    first bad row, as a sequential read would."""
    rng = np.random.default_rng(1)
    probs = probabilities(rng, rng.integers(0, K, 64), K)
    probs[61, 0] = np.nan
    probs[21, 1] = -0.5
    probs[45, 2] = np.inf
    ref = put_array(object_store, "in/u.npy", probs)
    with pytest.raises(InvalidArgument, match="row 21 has negative probabilities"):
        Scorer(object_store).score(c.STRATEGY_MARGIN, [ref], output_uri=object_store.uri("out"), chunk_size=4)
    assert list(object_store.list("out")) == []
