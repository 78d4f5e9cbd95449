"""The labeler plug-ins through their protocol, with an in-memory annotation log and a fake clock:
the registry covers the API's oneof, the oracle stores seeded labels once, external labelers are
waited for, time out, and stop when the experiment is paused."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from labelloop.controller.context import StopRequested
from labelloop.controller.dataset import DatasetView
from labelloop.controller.labelers import LABELERS, LabelingContext, LabelRequest, labeler_for
from labelloop.controller.labelers.external import ExternalLabelers
from labelloop.controller.labelers.oracle import SimulatedOracle, confusions, oracle_labels
from labelloop.controller.labelers.rules import DeadlinePassed
from labelloop.controller.labelset import Label
from labelloop.core.errors import InvalidArgument
from labelloop.v1 import dataset_store_pb2
from labelloop.v1 import experiments_pb2 as pb

CLASSES = ["a", "b", "c"]
POOL = [f"x{i:03d}" for i in range(12)]
TRUTH = {example_id: CLASSES[i % 3] for i, example_id in enumerate(POOL)}


@dataclass
class Log:
    """The annotation log of one experiment, as the dataset store keeps it: a retried request id
    is stored once."""

    annotation_set: str = "e1"
    entries: list[dataset_store_pb2.Annotation] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def append(self, labels: list[Label], request_id: str) -> None:
        if request_id in self.requests:
            return
        self.requests.append(request_id)
        self.entries.extend(
            dataset_store_pb2.Annotation(example_id=a.example_id, annotator=a.annotator, label=a.label)
            for a in labels
        )

    def annotations(self) -> list[dataset_store_pb2.Annotation]:
        return list(self.entries)

    def annotators_by_example(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for a in self.entries:
            found.setdefault(a.example_id, set()).add(a.annotator)
        return found


@dataclass
class Clock:
    now: float = 1000.0
    sleeps: int = 0
    on_sleep: Callable[[], None] = lambda: None

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        self.on_sleep()


def labeling(log: Log, clock: Clock, wait_start: list[float], interrupted: bool = False) -> LabelingContext:
    """wait_start: the round record's persisted wait start ([] before the first wait)."""

    def wait_started() -> float:
        if not wait_start:
            wait_start.append(clock.time())
        return wait_start[0]

    columns = ["example_id", "split", "label"]
    view = DatasetView("datasets/d", CLASSES, "label", columns, POOL, [], {"label": TRUTH})
    return LabelingContext(
        experiment_id="e1",
        labels=log,  # type: ignore[arg-type]
        view=view,
        wait_started=wait_started,
        progress=lambda message: None,
        interrupted=lambda: interrupted,
        clock=clock.time,
        sleep=clock.sleep,
        poll_seconds=0.2,
    )


def test_every_labeler_of_the_api_has_a_plug_in() -> None:
    oneof = pb.ExperimentConfig.DESCRIPTOR.oneofs_by_name["labeler"]
    assert sorted(f.name for f in oneof.fields) == sorted(LABELERS)
    config = pb.ExperimentConfig(external_labelers=pb.ExternalLabelers(timeout_seconds=5))
    assert isinstance(labeler_for(config), ExternalLabelers)
    with pytest.raises(InvalidArgument, match="set simulated_oracle or external_labelers"):
        labeler_for(pb.ExperimentConfig())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (pb.ExperimentConfig(simulated_oracle=pb.SimulatedOracle(noise_rate=1.0)), "noise_rate=1.0"),
        (pb.ExperimentConfig(simulated_oracle=pb.SimulatedOracle(annotator_count=-1)), "annotator_count=-1"),
        (pb.ExperimentConfig(external_labelers=pb.ExternalLabelers(timeout_seconds=-1)), "timeout_seconds"),
    ],
)
def test_labelers_check_their_own_settings(config: pb.ExperimentConfig, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        labeler_for(config).check()


def test_oracle_stores_seeded_labels_once() -> None:
    settings = pb.SimulatedOracle(noise_rate=0.3, annotator_count=2)
    oracle = SimulatedOracle(settings)
    log, clock = Log(), Clock()
    request = LabelRequest(POOL[:6], request_id="e1-r1-label", seed=(3, 1, 4), annotations_before=7)
    assert oracle.label(request, labeling(log, clock, [])) == 7 + 6
    expected = oracle_labels(settings, POOL[:6], TRUTH, CLASSES, seed=(3, 1, 4), first_turn=7)
    assert [(a.example_id, a.annotator, a.label) for a in log.entries] == [
        (lb.example_id, lb.annotator, lb.label) for lb in expected
    ]
    oracle.label(request, labeling(log, clock, []))  # a replay after a crash
    assert len(log.entries) == 6 and log.requests == ["e1-r1-label"]


def test_oracle_relabels_with_a_fresh_annotator() -> None:
    oracle = SimulatedOracle(pb.SimulatedOracle(annotator_count=2))
    log, clock = Log(), Clock()
    oracle.label(LabelRequest(POOL[:2], request_id="e1-initial", seed=(0,)), labeling(log, clock, []))
    again = LabelRequest(POOL[:2], request_id="e1-r0-label", seed=(1,), annotations_before=2, relabel=True)
    oracle.label(again, labeling(log, clock, []))
    both = {"oracle-0", "oracle-1"}
    assert log.annotators_by_example() == {POOL[0]: both, POOL[1]: both}


def test_external_labelers_are_waited_for() -> None:
    log, clock = Log(), Clock()
    log.append([Label(POOL[0], "alice", "a")], "before")  # labeled before this round's snapshot
    people = [Label(POOL[1], "bob", "b"), Label(POOL[0], "bob", "a")]
    clock.on_sleep = lambda: log.append(people[clock.sleeps - 1 : clock.sleeps], f"people-{clock.sleeps}")
    request = LabelRequest(POOL[:2], request_id="unused", seed=(0,), counts_before={POOL[0]: 1})
    labels_used = ExternalLabelers(pb.ExternalLabelers()).label(request, labeling(log, clock, []))
    assert labels_used == 1 + 2 and clock.sleeps == 2  # POOL[0] needed a second label, not its first


def test_external_labelers_pause_at_the_timeout_across_restarts() -> None:
    log, clock = Log(), Clock()
    people = ExternalLabelers(pb.ExternalLabelers(timeout_seconds=30))
    request = LabelRequest(POOL[:3], request_id="unused", seed=(0,))
    wait_start: list[float] = []
    with pytest.raises(DeadlinePassed, match=r"no label to any of the 3 selected examples within 30s"):
        people.label(request, labeling(log, clock, wait_start))
    assert wait_start == [1000.0] and 30 <= clock.now - 1000.0 <= 31
    # A restarted controller keeps the persisted start: it pauses at once, without a new 30 s wait.
    restarted = Clock(now=clock.now)
    with pytest.raises(DeadlinePassed, match="within 30s"):
        people.label(request, labeling(log, restarted, wait_start))
    assert restarted.sleeps == 0


def test_external_labelers_go_on_at_the_timeout_with_what_is_labeled() -> None:
    log, clock = Log(), Clock()
    log.append([Label(POOL[1], "bob", "b")], "bob-1")
    request = LabelRequest(POOL[:3], request_id="unused", seed=(0,))
    labels_used = ExternalLabelers(pb.ExternalLabelers(timeout_seconds=30)).label(
        request, labeling(log, clock, [])
    )
    assert labels_used == 1 and 30 <= clock.now - 1000.0 <= 31


def test_external_labelers_stop_when_the_experiment_pauses() -> None:
    log, clock = Log(), Clock()
    request = LabelRequest(POOL[:3], request_id="unused", seed=(0,))
    with pytest.raises(StopRequested):
        ExternalLabelers(pb.ExternalLabelers()).label(request, labeling(log, clock, [], interrupted=True))
    assert clock.sleeps == 0


TEN = [str(c) for c in range(10)]


def test_annotator_accuracies_hold_on_5000_draws_with_each_annotators_own_confusions() -> None:
    """Annotator i answers the truth with probability accuracies[i]; its wrong answers follow its own
    fixed confusion rows (not uniform, and not another annotator's)."""
    accuracies = [0.6, 0.75, 0.9]
    settings = pb.SimulatedOracle(annotator_accuracies=accuracies)
    ids = [f"e{i:05d}" for i in range(15000)]
    truth = {example_id: TEN[i % 10] for i, example_id in enumerate(ids)}
    labels = oracle_labels(settings, ids, truth, TEN, seed=(9, 1, 4), experiment_seed=9)
    assert len(labels) == len(ids) and {a.annotator for a in labels} == {"oracle-0", "oracle-1", "oracle-2"}
    for k, accuracy in enumerate(accuracies):
        mine = [a for a in labels if a.annotator == f"oracle-{k}"]
        assert len(mine) == 5000
        right = sum(a.label == truth[a.example_id] for a in mine) / len(mine)
        assert abs(right - accuracy) < 0.025, (k, right)  # 3.5 standard deviations at p=0.6
    # The wrong answers for true class "3" follow the annotator's confusion row.
    table = confusions(3, 10, experiment_seed=9)
    assert np.allclose(table.sum(axis=2), 1.0) and np.all(table[:, range(10), range(10)] == 0)
    mistakes = Counter(a.label for a in labels if a.annotator == "oracle-0" and truth[a.example_id] == "3")
    del mistakes["3"]
    observed = np.array([mistakes[c] for c in TEN]) / sum(mistakes.values())
    assert np.abs(observed - table[0, 3]).max() < 0.12
    assert not np.allclose(table[0], table[1])  # every annotator errs its own way


def test_annotator_accuracies_are_deterministic_and_fixed_across_batches() -> None:
    settings = pb.SimulatedOracle(annotator_accuracies=[0.5, 0.7])
    ids = [f"e{i:03d}" for i in range(200)]
    truth = {example_id: TEN[i % 10] for i, example_id in enumerate(ids)}

    def draw(seed: tuple[int, ...], experiment_seed: int) -> list[tuple[str, str, str]]:
        found = oracle_labels(settings, ids, truth, TEN, seed=seed, experiment_seed=experiment_seed)
        return [(a.example_id, a.annotator, a.label) for a in found]

    assert draw((1, 2, 4), 1) == draw((1, 2, 4), 1)  # a replay is identical
    assert draw((1, 2, 4), 1) != draw((1, 3, 4), 1)  # another batch draws again...
    assert np.array_equal(confusions(2, 10, 1), confusions(2, 10, 1))  # ...from the same annotators
    assert not np.allclose(confusions(2, 10, 1), confusions(2, 10, 2))
    perfect = pb.SimulatedOracle(annotator_accuracies=[1.0, 1.0])
    assert all(a.label == truth[a.example_id] for a in oracle_labels(perfect, ids, truth, TEN, seed=(0,)))


def test_oracle_with_accuracies_labels_through_its_plug_in() -> None:
    oracle = SimulatedOracle(pb.SimulatedOracle(annotator_accuracies=[0.9, 0.8, 0.7]))
    oracle.check()
    log, clock = Log(), Clock()
    request = LabelRequest(POOL[:6], request_id="e1-r1-label", seed=(3, 1, 4), experiment_seed=3)
    assert oracle.label(request, labeling(log, clock, [])) == 6
    assert {a.annotator for a in log.entries} == {"oracle-0", "oracle-1", "oracle-2"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (pb.SimulatedOracle(annotator_accuracies=[0.8, 1.5]), r"annotator_accuracies has \[1.5\]"),
        (pb.SimulatedOracle(annotator_accuracies=[0.0]), r"each accuracy must be in \(0, 1\]"),
        (pb.SimulatedOracle(annotator_accuracies=[0.8], noise_rate=0.1), "set only one"),
        (pb.SimulatedOracle(annotator_accuracies=[0.8, 0.9], annotator_count=3), "annotator_count=3 but"),
    ],
)
def test_annotator_accuracies_are_checked(settings: pb.SimulatedOracle, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        SimulatedOracle(settings).check()
