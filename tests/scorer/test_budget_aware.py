"""STRATEGY_BUDGET_AWARE: margin while one annotator labels, ActiveLab once several do."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from labelloop.core.storage import LocalStore
from labelloop.scorer.scoring import Scorer
from labelloop.scorer.strategies.budget_aware import several_annotators
from labelloop.v1 import common_pb2 as c
from labelloop.v1 import scorer_pb2 as pb
from labelloop.v1 import scorer_pb2_grpc as pb_grpc

from tests.scorer.data import annotator_labels, probabilities, put_array
from tests.scorer.server import running_scorer

K = 5
BUDGET = c.STRATEGY_BUDGET_AWARE


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


def inputs(store: LocalStore, labels: np.ndarray | None, models: int = 1) -> dict:
    """A pool of 200 rows and 60 labeled rows per model, with `labels` for the labeled rows."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, K, 60)
    pool_truth = rng.integers(0, K, 200)
    fields: dict = {
        "unlabeled_probabilities": [
            put_array(store, f"in/u{m}.npy", probabilities(rng, pool_truth, K)) for m in range(models)
        ]
    }
    if labels is not None:
        fields["labeled_probabilities"] = [
            put_array(store, f"in/l{m}.npy", probabilities(rng, truth, K)) for m in range(models)
        ]
        fields["labels_multiannotator"] = put_array(store, "in/labels.npy", labels)
    return fields


def scores(store: LocalStore, strategy: int, fields: dict, out: str) -> tuple[np.ndarray, np.ndarray | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab's warnings about annotator agreement
        np.random.seed(0)
        result = Scorer(store).score(strategy, output_uri=out, chunk_size=64, **fields)
    labeled = store.get_array(f"{out}/labeled_scores.npy") if result.labeled_scores else None
    return store.get_array(f"{out}/unlabeled_scores.npy"), labeled


def labels_of(kind: str) -> np.ndarray:
    rng = np.random.default_rng(5)
    truth = np.random.default_rng(3).integers(0, K, 60)
    if kind == "one_annotator":
        return truth[:, None].astype(np.float64)
    return annotator_labels(rng, truth, K, annotators=3, multi=kind == "several_labels")


@pytest.mark.parametrize("models", [1, 2])
@pytest.mark.parametrize("kind", ["none", "one_annotator"])
def test_margin_while_one_annotator_labels(store: LocalStore, kind: str, models: int) -> None:
    fields = inputs(store, None if kind == "none" else labels_of(kind), models)
    got, got_labeled = scores(store, BUDGET, fields, "budget")
    margin, _ = scores(
        store, c.STRATEGY_MARGIN, {"unlabeled_probabilities": fields["unlabeled_probabilities"]}, "m"
    )
    activelab, _ = scores(store, c.STRATEGY_ACTIVELAB, fields, "a")
    np.testing.assert_array_equal(got, margin)
    assert not np.allclose(got, activelab)
    if kind == "none":
        assert got_labeled is None
    else:  # another label from the only annotator is worth nothing: labeled rows come last
        assert got_labeled is not None and np.isinf(got_labeled).all() and (got_labeled > 0).all()


@pytest.mark.parametrize("models", [1, 2])
@pytest.mark.parametrize("kind", ["several_annotators_one_label_each", "several_labels"])
def test_activelab_once_several_annotators_label(store: LocalStore, kind: str, models: int) -> None:
    labels = labels_of(kind)
    assert several_annotators(labels)
    fields = inputs(store, labels, models)
    got, got_labeled = scores(store, BUDGET, fields, "budget")
    activelab, activelab_labeled = scores(store, c.STRATEGY_ACTIVELAB, fields, "a")
    np.testing.assert_array_equal(got, activelab)
    np.testing.assert_array_equal(got_labeled, activelab_labeled)


def test_the_switch_rule() -> None:
    nan = np.nan
    assert not several_annotators(None)
    assert not several_annotators(np.array([[1.0], [2.0]]))  # one annotator, one label each
    assert several_annotators(np.array([[1.0, nan], [nan, 2.0]]))  # two annotators, one label each
    assert several_annotators(np.array([[1.0, 1.0], [nan, 2.0]]))  # an example with two labels


def test_needs_labels_with_labeled_probabilities(store: LocalStore) -> None:
    """Both or neither, as ActiveLab."""
    from labelloop.core.errors import InvalidArgument

    fields = inputs(store, labels_of("one_annotator"))
    del fields["labels_multiannotator"]
    with pytest.raises(InvalidArgument, match="strategy budget_aware needs labels_multiannotator"):
        Scorer(store).score(BUDGET, output_uri="out", **fields)


@pytest.fixture
def stub(store: LocalStore) -> Iterator[pb_grpc.ScorerServiceStub]:
    with running_scorer(store) as stub:
        yield stub


def test_service_scores_budget_aware(store: LocalStore, stub: pb_grpc.ScorerServiceStub) -> None:
    fields = inputs(store, labels_of("one_annotator"))
    reply = stub.ScoreExamples(
        pb.ScoreExamplesRequest(strategy=BUDGET, output_uri="svc", **fields), timeout=30
    )
    assert reply.scored_count == 260 and reply.labeled_scores.uri
    margin, _ = scores(
        store, c.STRATEGY_MARGIN, {"unlabeled_probabilities": fields["unlabeled_probabilities"]}, "m"
    )
    np.testing.assert_array_equal(store.get_array("svc/unlabeled_scores.npy"), margin)
    with pytest.raises(grpc.RpcError) as info:
        stub.ScoreExamples(
            pb.ScoreExamplesRequest(
                strategy=BUDGET,
                output_uri="bad",
                unlabeled_probabilities=fields["unlabeled_probabilities"],
                labeled_probabilities=fields["labeled_probabilities"],
            ),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs labels_multiannotator" in info.value.details()
