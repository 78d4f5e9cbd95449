"""The batch selector plug-ins: the registry, and select_batch handing the whole batch to the plug-in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from labelloop.core.api import defined_values
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.selector.batch import BATCH_SELECTORS, batch_selector_for
from labelloop.selector.batch.base import BatchNeeds, BatchRequest
from labelloop.selector.batch.diverse import Diverse
from labelloop.selector.batch.lowest_scores import LowestScores
from labelloop.selector.batch.typical import Typical
from labelloop.selector.selection import select_batch
from labelloop.v1 import common_pb2 as c

from tests.scorer.data import put_array

LOWEST = c.BATCH_METHOD_LOWEST_SCORES


@dataclass
class HighestFirst:
    """A plug-in choosing the highest scores, recording its requests."""

    needs: BatchNeeds = field(default_factory=BatchNeeds)
    requests: list[BatchRequest] = field(default_factory=list)
    extra: int = 0

    def select(self, request: BatchRequest) -> np.ndarray:
        self.requests.append(request)
        order = request.candidates[np.argsort(-request.scores[request.candidates], kind="stable")]
        return order[: request.batch_size + self.extra]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


def stored(store: LocalStore, name: str, scores: list[float], prefix: str) -> c.ArrayRef:
    return put_array(store, f"{name}.npy", np.array(scores), [f"{prefix}{i}" for i in range(len(scores))])


def test_every_method_has_a_plugin_and_unspecified_means_lowest_scores() -> None:
    assert sorted(BATCH_SELECTORS) == defined_values(c.BatchMethod)
    assert isinstance(batch_selector_for(c.BATCH_METHOD_UNSPECIFIED), LowestScores)
    assert batch_selector_for(LOWEST) is batch_selector_for(c.BATCH_METHOD_UNSPECIFIED)
    with pytest.raises(InvalidArgument) as info:
        batch_selector_for(7)
    assert str(info.value) == (
        "batch_method 7 is not a batch method: choose one of BATCH_METHOD_LOWEST_SCORES, "
        "BATCH_METHOD_DIVERSE, BATCH_METHOD_TYPICAL"
    )
    assert isinstance(batch_selector_for(c.BATCH_METHOD_DIVERSE), Diverse)
    assert isinstance(batch_selector_for(c.BATCH_METHOD_TYPICAL), Typical)


def test_lowest_scores_plugin_chooses_among_candidates_only() -> None:
    scores = np.array([0.1, 0.5, 0.2, 0.0, 0.3])
    candidates = np.array([1, 2, 4])  # rows 0 and 3 excluded
    rows = LowestScores().select(BatchRequest(scores, candidates, 2, seed=0))
    assert rows.tolist() == [2, 4]
    classes = np.array([0, 1, 1, 0, 1])
    capped = LowestScores().select(BatchRequest(scores, candidates, 2, 0, max_per_class=1, classes=classes))
    assert capped.tolist() == [2]  # rows 2, 4 and 1 all predict class 1


def test_select_batch_hands_the_batch_to_the_plugin(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = HighestFirst()
    monkeypatch.setitem(BATCH_SELECTORS, LOWEST, plugin)
    unlabeled = stored(store, "u", [0.5, 0.1, 0.9, 0.3], "u")
    labeled = stored(store, "l", [0.7, 0.95], "l")
    probs = put_array(store, "pu.npy", np.eye(3)[[0, 1, 2, 2]] * 0.7 + 0.1)
    probs_l = put_array(store, "pl.npy", np.eye(3)[[1, 0]] * 0.7 + 0.1)
    batch = select_batch(
        store, unlabeled, 3, labeled_scores=labeled, allow_relabel=True, exclude_example_ids=["u2"],
        seed=5, max_per_class=2, unlabeled_probabilities=probs, labeled_probabilities=probs_l,
        batch_method=c.BATCH_METHOD_UNSPECIFIED,
    )  # fmt: skip
    assert [(e.example_id, e.score, e.relabel, e.predicted_class) for e in batch] == [
        ("l1", 0.95, True, 0),
        ("l0", 0.7, True, 1),
        ("u0", 0.5, False, 0),
    ]
    [request] = plugin.requests
    assert request.candidates.tolist() == [0, 1, 3, 4, 5]
    assert request.scores.tolist() == [0.5, 0.1, 0.9, 0.3, 0.7, 0.95]
    assert (request.batch_size, request.seed, request.max_per_class) == (3, 5, 2)
    assert request.classes is not None and request.classes.tolist() == [0, 1, 2, 2, 1, 0]


def test_plugins_that_break_the_contract_are_refused(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlabeled = stored(store, "u", [0.5, 0.1, 0.9, 0.3], "u")
    monkeypatch.setitem(BATCH_SELECTORS, LOWEST, HighestFirst(needs=BatchNeeds(embeddings=True)))
    with pytest.raises(InvalidArgument, match="BATCH_METHOD_LOWEST_SCORES needs unlabeled_embeddings"):
        select_batch(store, unlabeled, 2)
    monkeypatch.setitem(BATCH_SELECTORS, LOWEST, HighestFirst(extra=1))
    with pytest.raises(RuntimeError, match="chose 3 rows for a batch of 2"):
        select_batch(store, unlabeled, 2)
