"""The strategy plug-ins: the registry, and the Scorer doing what each plug-in's Needs declare."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from labelloop.core.api import defined_values
from labelloop.core.errors import InvalidArgument
from labelloop.core.storage import LocalStore
from labelloop.scorer.scoring import Scorer
from labelloop.scorer.strategies import STRATEGIES, strategy_for, strategy_name
from labelloop.scorer.strategies.base import FitInputs, Fitted, Needs, PoolChunk
from labelloop.v1 import common_pb2 as c

from tests.scorer.data import annotator_labels, probabilities, put_array

K = 4
# The strategy a fake plug-in stands in for in these tests.
SLOT = c.STRATEGY_MARGIN


@dataclass
class Recorder:
    """A plug-in that scores row r of the pool as r and records how it was called."""

    needs: Needs = field(default_factory=Needs)
    fits: list[FitInputs] = field(default_factory=list)
    chunks: list[tuple[int, str]] = field(default_factory=list)  # (start, thread name)
    wrong_length: bool = False

    def fit(self, inputs: FitInputs) -> Fitted[None]:
        self.fits.append(inputs)
        labeled = np.zeros(inputs.labeled_rows) if inputs.labeled else None
        return Fitted(None, labeled)

    def score(self, state: None, chunk: PoolChunk) -> np.ndarray:
        self.chunks.append((chunk.start, threading.current_thread().name))
        rows = chunk.rows + (1 if self.wrong_length else 0)
        return np.arange(chunk.start, chunk.start + rows, dtype=np.float64)


@dataclass
class Counter:
    """A sequential plug-in: its state counts the rows scored so far, so out-of-order chunks show."""

    needs: Needs = field(default_factory=lambda: Needs(sequential=True))

    def fit(self, inputs: FitInputs) -> Fitted[list[int]]:
        return Fitted([0], None)

    def score(self, state: list[int], chunk: PoolChunk) -> np.ndarray:
        if chunk.start == 0:
            time.sleep(0.05)  # run in parallel, the later chunks would count first
        first = state[0]
        state[0] += chunk.rows
        return np.arange(first, first + chunk.rows, dtype=np.float64)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path)


def pool(store: LocalStore, name: str, rows: int, seed: int = 0) -> c.ArrayRef:
    rng = np.random.default_rng(seed)
    return put_array(store, f"in/{name}.npy", probabilities(rng, rng.integers(0, K, rows), K))


def test_every_enum_value_has_a_plugin_and_keeps_its_metric_name() -> None:
    assert sorted(STRATEGIES) == defined_values(c.Strategy)
    # Metric labels and logs: dashboards select on these names.
    assert [strategy_name(v) for v in defined_values(c.Strategy)] == [
        "activelab", "random", "least_confidence", "margin", "entropy", "budget_aware",
    ]  # fmt: skip


@pytest.mark.parametrize("value", [c.STRATEGY_UNSPECIFIED, 42])
def test_unknown_strategies_name_the_choices(store: LocalStore, value: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        strategy_for(value)
    assert str(info.value) == (
        f"strategy {value} is not a scoring strategy: choose one of STRATEGY_ACTIVELAB, STRATEGY_RANDOM, "
        "STRATEGY_LEAST_CONFIDENCE, STRATEGY_MARGIN, STRATEGY_ENTROPY, STRATEGY_BUDGET_AWARE"
    )
    with pytest.raises(InvalidArgument, match="not a scoring strategy"):
        Scorer(store).score(value, [pool(store, "u", 5)], output_uri="out")
    assert not store.exists("out/unlabeled_scores.npy")


def test_scorer_runs_the_registered_plugin(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering a plug-in is all it takes: the Scorer fits it once and scores every chunk with it,
    on the scoring threads."""
    plugin = Recorder()
    monkeypatch.setitem(STRATEGIES, SLOT, plugin)
    units = [pool(store, "u0", 50, 1), pool(store, "u1", 50, 2)]
    labeled = [pool(store, "l0", 6, 3), pool(store, "l1", 6, 4)]
    result = Scorer(store).score(SLOT, units, labeled, output_uri="out", seed=9, chunk_size=8)

    np.testing.assert_array_equal(store.get_array("out/unlabeled_scores.npy"), np.arange(50))
    np.testing.assert_array_equal(store.get_array("out/labeled_scores.npy"), np.zeros(6))
    assert result.scored_count == 56
    [inputs] = plugin.fits
    assert (inputs.num_classes, inputs.num_models, inputs.seed, inputs.labeled_rows) == (K, 2, 9, 6)
    assert inputs.labels_multiannotator is None
    assert sorted(start for start, _ in plugin.chunks) == list(range(0, 50, 8))
    assert all(thread.startswith("score") for _, thread in plugin.chunks)


def test_sequential_plugins_score_chunks_in_order(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STRATEGIES, SLOT, Counter())
    Scorer(store).score(SLOT, [pool(store, "u", 40)], output_uri="out", chunk_size=4)
    np.testing.assert_array_equal(store.get_array("out/unlabeled_scores.npy"), np.arange(40))


@pytest.mark.parametrize("seed", [42, -3])
def test_random_draws_the_documented_streams(store: LocalStore, seed: int) -> None:
    """Pool rows from stream 0 of the seed, labeled rows from stream 1, whatever the chunk size."""
    Scorer(store).score(
        c.STRATEGY_RANDOM, [pool(store, "u", 100)], [pool(store, "l", 9)], output_uri="out", seed=seed,
        chunk_size=7,
    )  # fmt: skip
    np.testing.assert_array_equal(
        store.get_array("out/unlabeled_scores.npy"), np.random.default_rng([seed % 2**64, 0]).random(100)
    )
    np.testing.assert_array_equal(
        store.get_array("out/labeled_scores.npy"), np.random.default_rng([seed % 2**64, 1]).random(9)
    )


@pytest.mark.parametrize(
    ("needs", "models", "with_labeled", "message"),
    [
        (Needs(several_models=False), 2, False, "scores with one model, but 2 unlabeled_probabilities"),
        (Needs(labeled_probabilities=False), 1, True, "does not score labeled examples"),
        (Needs(embeddings=True), 1, False, "needs embeddings"),
        (Needs(labels_multiannotator=True), 1, True, "needs labels_multiannotator"),
    ],
)
def test_needs_drive_validation(
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
    needs: Needs,
    models: int,
    with_labeled: bool,
    message: str,
) -> None:
    plugin = Recorder(needs=needs)
    monkeypatch.setitem(STRATEGIES, SLOT, plugin)
    units = [pool(store, f"u{m}", 10, m) for m in range(models)]
    labeled = [pool(store, f"l{m}", 3, m) for m in range(models)] if with_labeled else []
    with pytest.raises(InvalidArgument, match=message):
        Scorer(store).score(SLOT, units, labeled, output_uri="out")
    assert plugin.fits == [] and list(store.list("out")) == []
    # The same request passes once the plug-in does not declare the need.
    monkeypatch.setitem(STRATEGIES, SLOT, Recorder())
    Scorer(store).score(SLOT, units, labeled, output_uri="out")


def test_labels_reach_plugins_that_need_them(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = Recorder(needs=Needs(labels_multiannotator=True))
    monkeypatch.setitem(STRATEGIES, SLOT, plugin)
    rng = np.random.default_rng(0)
    labels = annotator_labels(rng, rng.integers(0, K, 5), K, annotators=3, multi=True)
    labels[:, 1] = np.nan  # an annotator without labels here is dropped
    labels_ref = put_array(store, "in/labels.npy", labels)
    Scorer(store).score(SLOT, [pool(store, "u", 10)], [pool(store, "l", 5)], labels_ref, output_uri="out")
    got = plugin.fits[0].labels_multiannotator
    assert got is not None
    np.testing.assert_array_equal(got, labels[:, [0, 2]])


def test_baselines_ignore_labels(store: LocalStore) -> None:
    """labels_multiannotator is never opened for a strategy that does not need it."""
    missing = c.ArrayRef(uri=store.uri("no/labels.npy"))
    result = Scorer(store).score(
        c.STRATEGY_ENTROPY, [pool(store, "u", 10)], [pool(store, "l", 3)], missing, output_uri="out"
    )
    assert result.scored_count == 13


def test_a_plugin_with_the_wrong_row_count_stores_nothing(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STRATEGIES, SLOT, Recorder(wrong_length=True))
    with pytest.raises(RuntimeError, match="returned scores of shape"):
        Scorer(store).score(SLOT, [pool(store, "u", 10)], output_uri="out", chunk_size=4)
    assert list(store.list("out")) == []
