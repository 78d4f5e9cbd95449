"""Entry's commits write the experiment's record only when it changed (a round-only step rewrites just
its round), and a change still moves update_time and reaches storage."""

from __future__ import annotations

import threading
from pathlib import Path

from labelloop.controller.entry import Entry
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
        entry.commit(record)
        assert (records.experiment_writes, records.round_writes) == (1, 2)
        assert entry.experiment.update_time.ToNanoseconds() == first_time
        assert records.load_rounds("e1", 1)[0].round.progress_message == "scoring"

        entry.experiment.state = SUCCEEDED
        entry.commit(record)
        assert (records.experiment_writes, records.round_writes) == (2, 3)
        assert entry.experiment.update_time.ToNanoseconds() >= first_time
    stored = records.load_experiment("e1")
    assert stored.state == SUCCEEDED
    assert stored.update_time == entry.view().update_time  # what readers see is what is stored
