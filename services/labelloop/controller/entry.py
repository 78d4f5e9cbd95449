"""One experiment in memory: its record, its rounds, and the lock and version that watchers wait on."""

from __future__ import annotations

import threading

from labelloop.controller.records import RecordStore, RoundRecord, now
from labelloop.v1 import experiments_pb2


class Entry:
    """An experiment's in-memory state. Every change is made with `lock` held and persisted (commit)
    before it is announced, so what a client sees is never ahead of what a restart would resume."""

    def __init__(
        self,
        experiment: experiments_pb2.Experiment,
        rounds: list[RoundRecord],
        records: RecordStore,
        changed: threading.Condition,
    ):
        self.experiment = experiment
        self.rounds = rounds
        self.records = records
        self.lock = changed
        self.version = 0  # bumped on every change; watchers wait for it to move
        self.thread: threading.Thread | None = None  # the runner, while one is alive

    @property
    def id(self) -> str:
        return self.experiment.name.removeprefix("experiments/")

    @property
    def state(self) -> int:
        return self.experiment.state

    def round(self, number: int) -> RoundRecord | None:
        return self.rounds[number] if number < len(self.rounds) else None

    def current_round(self) -> experiments_pb2.Round:
        record = self.round(self.experiment.current_round)
        return record.round if record else experiments_pb2.Round()

    def commit(self, *changed: RoundRecord) -> None:
        """Persists the given rounds, then the experiment, then wakes watchers. Caller holds the lock."""
        for record in changed:
            number = record.round.number
            if number == len(self.rounds):
                self.rounds.append(record)
            self.rounds[number] = record
            self.records.save_round(self.id, record)
        self.experiment.update_time.CopyFrom(now())
        self.records.save_experiment(self.experiment)
        self.touch()

    def touch(self) -> None:
        """Announces an in-memory change (progress messages are not persisted). Caller holds the lock."""
        self.version += 1
        self.lock.notify_all()
