"""Entry's commits write the experiment's record only when it changed (a round-only step rewrites just
its round), and a change still moves update_time and reaches storage."""

from __future__ import annotations

import threading
from pathlib import Path

from labelloop.controller.clients import Stubs
from labelloop.controller.entry import Entry
from labelloop.controller.experiments import Experiments
from labelloop.controller.records import RecordStore, RoundRecord
from labelloop.core.storage import LocalStore
from labelloop.v1 import experiments_pb2

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
SUCCEEDED = experiments_pb2.EXPERIMENT_STATE_SUCCEEDED


class CountingRecords(RecordStore):
    def __init__(self, store: LocalStore):
        super().__init__(store)
        self.experiment_writes = 0
        self.round_writes = 0

    def save_experiment(self, experiment: experiments_pb2.Experiment) -> None:
        self.experiment_writes += 1
        super().save_experiment(experiment)

    def save_round(self, experiment_id: str, record: RoundRecord) -> None:
        self.round_writes += 1
        super().save_round(experiment_id, record)


def test_a_round_only_commit_leaves_the_experiment_record_alone(tmp_path: Path) -> None:
    records = CountingRecords(LocalStore(tmp_path))
    experiment = experiments_pb2.Experiment(name="experiments/e1", state=RUNNING)
    record = RoundRecord(round=experiments_pb2.Round(name="experiments/e1/rounds/0", number=0))
    entry = Entry(experiment, [record], records, threading.Condition())
    with entry.lock:
        entry.commit(record)  # the first commit writes both
        first_time = entry.experiment.update_time.ToNanoseconds()
        assert (records.experiment_writes, records.round_writes) == (1, 1)

        record.round.progress_message = "scoring"
        record.round.stage = entry.experiment.current_stage = experiments_pb2.ROUND_STAGE_SCORE
        entry.commit(record)
        assert (records.experiment_writes, records.round_writes) == (1, 2)
        assert entry.experiment.update_time.ToNanoseconds() == first_time
        assert records.load_rounds("e1", 1)[0].round.progress_message == "scoring"
        # The stored experiment still shows the older stage; the round's record holds the new one.
        assert records.load_experiment("e1").current_stage != experiments_pb2.ROUND_STAGE_SCORE

        entry.experiment.state = SUCCEEDED
        entry.commit(record)
        assert (records.experiment_writes, records.round_writes) == (2, 3)
        assert entry.experiment.update_time.ToNanoseconds() >= first_time
    stored = records.load_experiment("e1")
    assert stored.state == SUCCEEDED
    assert stored.update_time == entry.view().update_time  # what readers see is what is stored


def test_a_restarted_controller_takes_the_stage_from_the_current_round(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    records = RecordStore(store)
    experiment = experiments_pb2.Experiment(
        name="experiments/e1", state=experiments_pb2.EXPERIMENT_STATE_PAUSED, current_round=1
    )
    rounds = [
        RoundRecord(round=experiments_pb2.Round(name=f"experiments/e1/rounds/{n}", number=n, stage=stage))
        for n, stage in ((0, experiments_pb2.ROUND_STAGE_DONE), (1, experiments_pb2.ROUND_STAGE_SELECT))
    ]
    entry = Entry(experiment, rounds, records, threading.Condition())
    with entry.lock:
        entry.experiment.current_stage = experiments_pb2.ROUND_STAGE_TRAIN
        entry.commit(*rounds)
        entry.experiment.current_stage = experiments_pb2.ROUND_STAGE_SELECT  # a step's stage change alone
        entry.commit(rounds[1])
    assert records.load_experiment("e1").current_stage == experiments_pb2.ROUND_STAGE_TRAIN
    no_services = Stubs(store=None, trainer=None, scorer=None, selector=None)  # type: ignore[arg-type]
    experiments = Experiments(store, no_services)  # a paused experiment: nothing resumes, nothing calls
    experiments.recover()
    assert experiments.get("experiments/e1").current_stage == experiments_pb2.ROUND_STAGE_SELECT
