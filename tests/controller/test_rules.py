"""Pure pieces of the round state machine: stopping rules, batch truncation, initial labels, the oracle."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from labelloop.controller.ids import derived_seed, snapshot_id
from labelloop.controller.initial import initial_example_ids, needs_embeddings
from labelloop.controller.labelers.oracle import oracle_labels
from labelloop.controller.stopping import next_batch_size, stop_reason
from labelloop.controller.training import embedding_request, is_lost, progress_text, training_request
from labelloop.controller.validation import check_initial
from labelloop.core.errors import FailedPrecondition, InvalidArgument
from labelloop.v1 import common_pb2, trainer_pb2
from labelloop.v1 import experiments_pb2 as pb

CLASSES = ["a", "b", "c"]
POOL = [f"x{i:03d}" for i in range(30)]
TRUTH = {example_id: CLASSES[i % 3] for i, example_id in enumerate(POOL)}


@pytest.mark.parametrize(
    ("rule", "round_number", "labels_used", "accuracy", "selectable", "expected"),
    [
        (pb.StoppingRule(max_rounds=3), 2, 50, 0.5, 10, ""),
        (pb.StoppingRule(max_rounds=3), 3, 50, 0.5, 10, "max_rounds=3"),
        (pb.StoppingRule(target_accuracy=0.9), 1, 50, 0.89, 10, ""),
        (pb.StoppingRule(target_accuracy=0.9), 1, 50, 0.9, 10, "target_accuracy=0.9"),
        (pb.StoppingRule(label_budget=100), 4, 99, 0.5, 10, ""),
        (pb.StoppingRule(label_budget=100), 4, 100, 0.5, 10, "label budget (100 of 100"),
        (pb.StoppingRule(max_rounds=9), 1, 10, 0.5, 0, "no examples left"),
        # The first rule reached wins.
        (pb.StoppingRule(max_rounds=2, label_budget=10), 2, 10, 0.5, 10, "max_rounds=2"),
    ],
)
def test_stop_reason(
    rule: pb.StoppingRule,
    round_number: int,
    labels_used: int,
    accuracy: float,
    selectable: int,
    expected: str,
) -> None:
    reason = stop_reason(rule, round_number, labels_used, accuracy, selectable)
    assert (expected in reason) if expected else reason == ""


def test_last_batch_is_truncated_to_the_budget() -> None:
    assert next_batch_size(20, pb.StoppingRule(label_budget=100), 30) == 20
    assert next_batch_size(20, pb.StoppingRule(label_budget=100), 95) == 5
    assert next_batch_size(20, pb.StoppingRule(label_budget=100), 100) == 0
    assert next_batch_size(20, pb.StoppingRule(max_rounds=3), 10_000) == 20


def test_initial_per_class_is_seeded_and_balanced() -> None:
    initial = pb.InitialLabels(per_class=2)
    first = initial_example_ids(initial, POOL, TRUTH, CLASSES, seed=5)
    assert first == initial_example_ids(initial, list(reversed(POOL)), TRUTH, CLASSES, seed=5)
    assert sorted(TRUTH[i] for i in first) == ["a", "a", "b", "b", "c", "c"]
    assert len(set(first)) == 6
    others = {tuple(initial_example_ids(initial, POOL, TRUTH, CLASSES, seed=s)) for s in range(6)}
    assert len(others) > 1  # the seed matters


def test_initial_per_class_needs_enough_examples_of_every_class() -> None:
    truth = {**TRUTH, **{i: "a" for i in POOL[:20]}}  # only a few b and c left
    with pytest.raises(FailedPrecondition, match="lower per_class"):
        initial_example_ids(pb.InitialLabels(per_class=5), POOL, truth, CLASSES, seed=0)


def test_initial_explicit_ids_are_checked() -> None:
    ids = ["x001", "x002", "x003"]
    assert initial_example_ids(pb.InitialLabels(example_ids=ids), POOL, None, CLASSES, 0) == ids
    with pytest.raises(InvalidArgument, match="not in the dataset's pool"):
        initial_example_ids(pb.InitialLabels(example_ids=["x001", "nope"]), POOL, None, CLASSES, 0)
    with pytest.raises(InvalidArgument, match="duplicates"):
        initial_example_ids(pb.InitialLabels(example_ids=["x001", "x001"]), POOL, None, CLASSES, 0)


def test_oracle_without_noise_reveals_the_truth_and_takes_turns() -> None:
    oracle = pb.SimulatedOracle(annotator_count=3)
    labels = oracle_labels(oracle, POOL[:6], TRUTH, CLASSES, seed=(1, 2), first_turn=1)
    assert [lb.label for lb in labels] == [TRUTH[i] for i in POOL[:6]]
    assert [lb.annotator for lb in labels] == ["oracle-1", "oracle-2", "oracle-0"] * 2


def test_oracle_noise_is_seeded_and_about_the_rate() -> None:
    oracle = pb.SimulatedOracle(noise_rate=0.3)
    labels = oracle_labels(oracle, POOL * 20, TRUTH, CLASSES, seed=(7, 1))
    wrong = sum(lb.label != TRUTH[lb.example_id] for lb in labels) / len(labels)
    assert 0.2 < wrong < 0.4
    assert all(lb.label in CLASSES for lb in labels)
    assert labels == oracle_labels(oracle, POOL * 20, TRUTH, CLASSES, seed=(7, 1))  # replay is identical


def test_oracle_relabels_with_a_fresh_annotator_only() -> None:
    oracle = pb.SimulatedOracle(annotator_count=2)
    existing = {"x000": {"oracle-0"}, "x001": {"oracle-0", "oracle-1"}}
    labels = oracle_labels(oracle, ["x000", "x001", "x002"], TRUTH, CLASSES, seed=(0,), existing=existing)
    assert [(lb.example_id, lb.annotator) for lb in labels] == [("x000", "oracle-1"), ("x002", "oracle-1")]


def test_snapshot_ids_are_per_experiment_and_valid() -> None:
    assert snapshot_id("exp-1", 3) == "exp-1-r3"
    long_id = "e" * 63
    assert len(snapshot_id(long_id, 12)) <= 63
    assert snapshot_id(long_id, 12) != snapshot_id("e" * 62 + "f", 12)
    assert derived_seed(1, 2, 3) == derived_seed(1, 2, 3) != derived_seed(1, 3, 3)


def test_training_requests_are_idempotent_per_attempt() -> None:
    config = trainer_pb2.TrainerConfig(hyperparameters={"optim.max_epochs": "3"})
    first = training_request("e1", 2, 0, "datasets/d/snapshots/e1-r2", config, 9, "file:///s/e/")
    assert first.request_id == "e1-r2-train" and first.config.seed == 9
    assert first.labels == {"experiment": "e1", "round": "2"}
    assert training_request("e1", 2, 1, "s", config, 9, "u").request_id == "e1-r2-train-a1"
    assert config.seed == 0  # the experiment's config is not modified


@pytest.mark.parametrize(
    ("operation", "lost"),
    [
        (None, True),
        (trainer_pb2.Operation(state=common_pb2.OPERATION_STATE_FAILED, error={"code": 10}), True),
        (trainer_pb2.Operation(state=common_pb2.OPERATION_STATE_CANCELLED), True),
        (trainer_pb2.Operation(state=common_pb2.OPERATION_STATE_FAILED, error={"code": 9}), False),
    ],
)
def test_only_lost_training_runs_are_retried(operation: trainer_pb2.Operation | None, lost: bool) -> None:
    assert is_lost(operation) is lost


def test_progress_text_is_what_watch_parses() -> None:
    operation = trainer_pb2.Operation(progress=0.456, progress_message="epoch 3/10")
    assert progress_text(operation) == "train 46%: epoch 3/10"
    assert progress_text(trainer_pb2.Operation(progress=1.0)) == "train 100%"


def test_initial_random_count_is_seeded_uniform_and_needs_no_truth() -> None:
    initial = pb.InitialLabels(count=7, selection=pb.INITIAL_SELECTION_RANDOM)
    first = initial_example_ids(initial, POOL, None, CLASSES, seed=5)
    assert len(first) == len(set(first)) == 7 and set(first) <= set(POOL)
    assert first == initial_example_ids(initial, list(reversed(POOL)), None, CLASSES, seed=5)  # row order
    others = {tuple(initial_example_ids(initial, POOL, None, CLASSES, seed=s)) for s in range(6)}
    assert len(others) == 6
    # Uniform: over many seeds every pool example is picked about count/len(POOL) of the time.
    picks = Counter(i for s in range(600) for i in initial_example_ids(initial, POOL, None, CLASSES, seed=s))
    assert set(picks) == set(POOL) and max(picks.values()) < 2 * min(picks.values())
    with pytest.raises(FailedPrecondition, match="count=31 exceeds the 30 pool examples"):
        initial_example_ids(pb.InitialLabels(count=31, selection=2), POOL, None, CLASSES, seed=0)


def test_a_typical_first_set_is_chosen_with_the_trainer_not_here() -> None:
    for initial in (
        pb.InitialLabels(count=3),
        pb.InitialLabels(count=3, selection=pb.INITIAL_SELECTION_TYPICAL),
    ):
        assert needs_embeddings(initial)
        with pytest.raises(FailedPrecondition, match="typical first set"):
            initial_example_ids(initial, POOL, TRUTH, CLASSES, seed=0)
    assert not needs_embeddings(pb.InitialLabels(count=3, selection=pb.INITIAL_SELECTION_RANDOM))
    assert not needs_embeddings(pb.InitialLabels(per_class=3))


@pytest.mark.parametrize(
    ("initial", "message"),
    [
        (pb.InitialLabels(), "sets nothing: set exactly one of count"),
        (pb.InitialLabels(per_class=2, count=5), "sets per_class and count: set exactly one of"),
        (pb.InitialLabels(example_ids=["x001"], count=5), "sets example_ids and count"),
        (pb.InitialLabels(count=-1), "count=-1 must be >= 0"),
        (pb.InitialLabels(per_class=2, selection=pb.INITIAL_SELECTION_RANDOM), "set count too"),
        (
            pb.InitialLabels(count=5, selection=9),
            "selection=9 is not defined: choose one of INITIAL_SELECTION_",
        ),
    ],
)
def test_initial_labels_are_exactly_one_of(initial: pb.InitialLabels, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        check_initial(initial)


def test_valid_initial_labels_pass() -> None:
    for initial in (
        pb.InitialLabels(per_class=2),
        pb.InitialLabels(example_ids=["x001"]),
        pb.InitialLabels(count=4),
        pb.InitialLabels(count=4, selection=pb.INITIAL_SELECTION_RANDOM),
    ):
        check_initial(initial)


def test_embedding_requests_are_idempotent_per_attempt() -> None:
    config = trainer_pb2.TrainerConfig(mode=trainer_pb2.TRAINING_MODE_LINEAR_PROBE)
    first = embedding_request("e1", 0, "datasets/d", config, seed=4, output_uri="file:///x/")
    assert first == embedding_request("e1", 0, "datasets/d", config, seed=4, output_uri="file:///x/")
    assert first.request_id == "e1-embed" and first.config.seed == 4 and first.dataset == "datasets/d"
    assert embedding_request("e1", 2, "datasets/d", config, 4, "file:///x/").request_id == "e1-embed-a2"
    assert progress_text(trainer_pb2.Operation(progress=0.5), verb="embed") == "embed 50%"
