"""ExperimentService over real gRPC: the store and the controller as processes (no trainer, so no
AutoGluon): config validation answers with the right status codes, and the state machine's first
steps, pause, resume, cancel and a crash restart behave."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core.storage import open_store
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb

POOL_ID = "<a pool example>"  # replaced by a real pool example id in the test


def create(client: LabelLoopClient, experiment_id: str = "", **overrides: object) -> pb.Experiment:
    args: dict = dict(dataset="digits", per_class=2, batch_size=10, max_rounds=3, seed=1)
    args.update(overrides)
    return client.create_experiment(experiment_id, **args)


def stored_objects(local: LocalCluster) -> dict[str, bytes]:
    """Every object in the store, with its contents."""
    store = open_store(local.settings.storage)
    return {key: store.get_bytes(key) for key in store.list("")}


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"dataset": "nope"}, grpc.StatusCode.NOT_FOUND, "dataset 'datasets/nope' does not exist: create it"),
        ({"dataset": "Bad Name"}, grpc.StatusCode.INVALID_ARGUMENT, "'Bad Name' is not a valid id"),
        ({"batch_size": 0}, grpc.StatusCode.INVALID_ARGUMENT, "config.batch_size=0: set how many"),
        ({"batch_size": 141}, grpc.StatusCode.FAILED_PRECONDITION, "batch_size=141 exceeds the 140 pool"),
        ({"max_rounds": 0}, grpc.StatusCode.INVALID_ARGUMENT, "sets no rule: set max_rounds, label_budget"),
        ({"strategy": 0}, grpc.StatusCode.INVALID_ARGUMENT, "strategy is unset: choose one of STRATEGY_"),
        (
            {"strategy": 99},
            grpc.StatusCode.INVALID_ARGUMENT,
            "config.strategy=99 is not a strategy: choose one of STRATEGY_ACTIVELAB, STRATEGY_RANDOM, ",
        ),
        (
            {"initial_count": 20},
            grpc.StatusCode.INVALID_ARGUMENT,
            "initial_labels sets per_class and count: set exactly one of count",
        ),
        (
            {"per_class": 0, "initial_count": 141},
            grpc.StatusCode.FAILED_PRECONDITION,
            "initial_labels.count=141 exceeds the 140 pool examples",
        ),
        (
            {"per_class": 0, "initial_count": 5, "initial_selection": "random"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "5 initial labels for 10 classes: start with at least as many examples as classes",
        ),
        (
            {"per_class": 0, "initial_count": 20, "label_budget": 20, "max_rounds": 0},
            grpc.StatusCode.INVALID_ARGUMENT,
            "label_budget=20 leaves nothing to buy after 20 initial labels",
        ),
        ({"batch_method": 99}, grpc.StatusCode.INVALID_ARGUMENT, "config.batch_method=99 is not defined"),
        (
            {"labeled_probabilities": 7},
            grpc.StatusCode.INVALID_ARGUMENT,
            "labeled_probabilities=7 is not defined: choose one of LABELED_PROBABILITIES_OUT_OF_SAMPLE",
        ),
        (
            {"annotator_accuracies": [0.9, 0.0]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "annotator_accuracies has [0.0]: each accuracy must be in (0, 1]",
        ),
        (
            {"annotator_accuracies": [0.9, 0.8], "noise_rate": 0.2},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sets both noise_rate and annotator_accuracies",
        ),
        (
            {"per_class": 15},
            grpc.StatusCode.FAILED_PRECONDITION,
            "per_class=15 x 10 classes needs 150 examples but the pool has 140",
        ),
        (
            {"per_class": 0, "initial_example_ids": ["ghost"]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "names 1 examples that are not in the dataset's pool split, e.g. ['ghost']",
        ),
        (
            {"per_class": 0, "initial_example_ids": [POOL_ID]},
            grpc.StatusCode.INVALID_ARGUMENT,
            "1 initial labels for 10 classes",
        ),
        (
            {"oracle_label_column": "pixel_9x"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "simulated_oracle.label_column 'pixel_9x' is not a column of datasets/digits",
        ),
        ({"noise_rate": 1.5}, grpc.StatusCode.INVALID_ARGUMENT, "noise_rate=1.5 must be in [0, 1)"),
        (
            {"external_labelers": True, "label_timeout_seconds": -1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "external_labelers.timeout_seconds must be >= 0",
        ),
        (
            {"label_budget": 20, "max_rounds": 0},
            grpc.StatusCode.INVALID_ARGUMENT,
            "label_budget=20 leaves nothing to buy after 20 initial labels",
        ),
        ({"target_accuracy": 2.0}, grpc.StatusCode.INVALID_ARGUMENT, "target_accuracy in [0, 1]"),
    ],
)
def test_create_rejects_bad_configs(
    running: tuple[LocalCluster, LabelLoopClient], overrides: dict, code: grpc.StatusCode, message: str
) -> None:
    """A rejected request leaves nothing behind: no object written or changed, no experiment listed."""
    local, client = running
    if overrides.get("initial_example_ids") == [POOL_ID]:
        pool = client.store.ListExamples(
            ds.ListExamplesRequest(parent="datasets/digits", split=ds.SPLIT_POOL)
        )
        overrides = {**overrides, "initial_example_ids": [pool.examples[0].example_id]}
    stored, listed = stored_objects(local), client.list()
    with pytest.raises(grpc.RpcError) as info:
        create(client, "rejected", **overrides)
    assert info.value.code() == code, info.value.details()
    assert message in info.value.details()
    assert stored_objects(local) == stored
    assert client.list() == listed


def test_create_get_list(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    _, client = running
    made = create(client, "listed-1", display_name="first")
    assert made.state == pb.EXPERIMENT_STATE_CREATED
    assert made.annotation_set == "listed-1" and made.display_name == "first"
    assert client.get("listed-1") == made
    generated = create(client)
    assert generated.name.startswith("experiments/exp-")
    with pytest.raises(grpc.RpcError) as info:
        create(client, "listed-1")
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as info:
        create(client, "Upper")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        client.get("missing")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    first = client.experiments.ListExperiments(pb.ListExperimentsRequest(page_size=1))
    assert len(first.experiments) == 1 and first.next_page_token
    names = {e.name for e in client.list()}
    assert {"experiments/listed-1", generated.name} <= names


def wait_for(
    client: LabelLoopClient, name: str, check, timeout: float = 60.0
) -> tuple[pb.Experiment, pb.Round]:
    """Watches until check(experiment, round) holds."""
    deadline = time.monotonic() + timeout
    for experiment, current in client.watch(name, timeout=timeout):
        if check(experiment, current):
            return experiment, current
        assert time.monotonic() < deadline
    raise AssertionError(f"watch of {name} ended before the condition held: {client.get(name)}")


def test_state_machine_without_a_trainer(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """Initial labels and the first snapshot happen; training waits for the (absent) trainer; pause,
    resume, a controller crash and cancel behave; the initial labels are stored once."""
    local, client = running
    experiment = create(client, "no-trainer", per_class=3, annotator_count=2, start=True)
    assert experiment.state == pb.EXPERIMENT_STATE_RUNNING

    _, current = wait_for(client, "no-trainer", lambda e, r: r.stage == pb.ROUND_STAGE_TRAIN)
    assert current.snapshot == "datasets/digits/snapshots/no-trainer-r0"
    assert current.labeled_count == 30 and current.stage_seconds["snapshot"] > 0
    annotations = client.list_annotations("digits", "no-trainer")
    assert len(annotations) == 30
    assert {a.annotator for a in annotations} == {"oracle-0", "oracle-1"}
    assert client.get("no-trainer").labels_used == 30

    paused = client.pause("no-trainer")
    assert paused.state == pb.EXPERIMENT_STATE_PAUSED
    with pytest.raises(grpc.RpcError) as info:
        client.start("no-trainer")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert client.resume("no-trainer").state == pb.EXPERIMENT_STATE_RUNNING

    local.kill("controller")  # a crash while the round waits for the trainer
    local.start_service("controller")
    after = client.get("no-trainer")
    assert after.state == pb.EXPERIMENT_STATE_RUNNING and after.current_stage == pb.ROUND_STAGE_TRAIN
    (round_zero,) = client.list_rounds("no-trainer")
    assert round_zero.snapshot == current.snapshot

    cancelled = client.cancel("no-trainer")
    assert cancelled.state == pb.EXPERIMENT_STATE_CANCELLED
    last, _ = wait_for(client, "no-trainer", lambda e, r: e.state == pb.EXPERIMENT_STATE_CANCELLED)
    assert last.status_message == "cancelled"
    with pytest.raises(grpc.RpcError) as info:
        client.resume("no-trainer")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(client.list_annotations("digits", "no-trainer")) == 30  # nothing appended twice


def test_rounds_of_unknown_experiment(running: tuple[LocalCluster, LabelLoopClient], tmp_path: Path) -> None:
    _, client = running
    with pytest.raises(grpc.RpcError) as info:
        client.list_rounds("ghost")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        client.experiments.ListRounds(pb.ListRoundsRequest(parent="projects/x"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_replayed_steps_store_nothing_twice(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """A crash after a step's effects but before its record was written: the restarted controller
    replays the step (initial labels, snapshot) and the store keeps one copy of everything."""
    local, client = running
    create(client, "replay", per_class=2, annotator_count=1, start=True)
    _, before = wait_for(client, "replay", lambda e, r: r.stage == pb.ROUND_STAGE_TRAIN)
    local.kill("controller")
    store = open_store(local.settings.storage)
    record = store.get_json("experiments/replay/rounds/0.json")
    record["round"]["stage"] = "ROUND_STAGE_SNAPSHOT"  # as if killed just before the step's commit
    store.put_json("experiments/replay/rounds/0.json", record)
    local.start_service("controller")

    _, after = wait_for(client, "replay", lambda e, r: r.stage == pb.ROUND_STAGE_TRAIN)
    assert after.snapshot == before.snapshot and after.labeled_count == 20
    assert len(client.list_annotations("digits", "replay")) == 20
    assert "were already stored (replay after a restart)" in local.log_tail("controller", 20_000)
    client.cancel("replay")


def test_external_labelers_are_waited_for(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """With people labeling, the controller waits until every initial example has a label."""
    _, client = running
    request = ds.ListExamplesRequest(parent="datasets/digits", split=ds.SPLIT_POOL, page_size=200)
    pool = client.store.ListExamples(request).examples
    ids = [e.example_id for e in pool[:12]]
    create(client, "people", per_class=0, initial_example_ids=ids, external_labelers=True, start=True)
    _, waiting = wait_for(client, "people", lambda e, r: r.progress_message.startswith("label: waiting"))
    assert waiting.stage == pb.ROUND_STAGE_SNAPSHOT and "12 of 12" in waiting.progress_message

    digits = [str(i) for i in range(10)]
    annotations = [
        ds.Annotation(example_id=i, annotator="alice", label=digits[n % 10]) for n, i in enumerate(ids)
    ]
    client.store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent="datasets/digits", annotation_set="people", annotations=annotations[:5], request_id="a1"
        )
    )
    _, partial = wait_for(client, "people", lambda e, r: "7 of 12" in r.progress_message)
    assert partial.stage == pb.ROUND_STAGE_SNAPSHOT
    client.store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent="datasets/digits", annotation_set="people", annotations=annotations[5:], request_id="a2"
        )
    )
    _, training = wait_for(client, "people", lambda e, r: r.stage == pb.ROUND_STAGE_TRAIN)
    assert training.labeled_count == 12
    client.cancel("people")


def test_external_labelers_time_out(running: tuple[LocalCluster, LabelLoopClient]) -> None:
    """Nothing labeled in time pauses the experiment (it does not fail); labels given meanwhile move it
    on after ResumeExperiment."""
    _, client = running
    request = ds.ListExamplesRequest(parent="datasets/digits", split=ds.SPLIT_POOL, page_size=10)
    ids = [e.example_id for e in client.store.ListExamples(request).examples]
    create(
        client,
        "slow-people",
        per_class=0,
        initial_example_ids=ids,
        external_labelers=True,
        label_timeout_seconds=1.5,
        start=True,
    )
    paused, _ = wait_for(client, "slow-people", lambda e, r: e.state == pb.EXPERIMENT_STATE_PAUSED)
    assert "within 1.5s" in paused.status_message and "AppendAnnotations" in paused.status_message
    annotations = [ds.Annotation(example_id=i, annotator="late", label="1") for i in ids]
    client.store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent="datasets/digits", annotation_set="slow-people", annotations=annotations, request_id="late"
        )
    )
    client.resume("slow-people")
    _, training = wait_for(client, "slow-people", lambda e, r: r.stage == pb.ROUND_STAGE_TRAIN)
    assert training.labeled_count == 10
    client.cancel("slow-people")
