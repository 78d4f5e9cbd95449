"""The Experiments domain class: create, control and watch experiments (threads.py runs them).

All in-memory state sits behind one condition variable; every change is persisted before it is
announced to watchers, so what a client sees is never ahead of what a restart would resume.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from google.protobuf.message import Message

from labelloop.controller.clients import Stubs, call
from labelloop.controller.dataset import fetch_view
from labelloop.controller.entry import Entry
from labelloop.controller.labelers import labeler_for
from labelloop.controller.records import RecordStore, RoundRecord, now
from labelloop.controller.threads import Runners
from labelloop.controller.validation import check_against_dataset, check_config
from labelloop.core import metrics, names, paging
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES, enum_name
from labelloop.core.errors import AlreadyExists, FailedPrecondition, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2, trainer_pb2

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
PAUSED = experiments_pb2.EXPERIMENT_STATE_PAUSED
CREATED = experiments_pb2.EXPERIMENT_STATE_CREATED
CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED


def state_name(state: int) -> str:
    return enum_name(experiments_pb2.ExperimentState, state).upper()


class Experiments:
    def __init__(self, store: ObjectStore, stubs: Stubs, poll_seconds: float = 0.2, crash_at: str = ""):
        self.store = store
        self.stubs = stubs
        self.records = RecordStore(store)
        self.runners = Runners(store, stubs, poll_seconds, crash_at)
        self._lock = threading.Condition()
        self._entries: dict[str, Entry] = {}

    # Start-up ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """Loads every experiment and resumes those that were running when the controller stopped."""
        for experiment_id in sorted(self.records.experiment_ids()):
            experiment = self.records.load_experiment(experiment_id)
            rounds = self.records.load_rounds(experiment_id, experiment.current_round + 1)
            entry = Entry(experiment, rounds, self.records, self._lock)
            self._entries[experiment_id] = entry
            _restore_gauges(experiment)
        for entry in self._entries.values():
            if entry.state == RUNNING:
                log.info("resuming %s at round %d", entry.experiment.name, entry.experiment.current_round)
                with self._lock:
                    self.runners.spawn(entry)

    # Lookups ----------------------------------------------------------------------------------

    def _entry(self, name: str) -> Entry:
        (experiment_id,) = names.parse(name, "experiments")
        entry = self._entries.get(experiment_id)
        if entry is None:
            raise NotFound(f"experiment {name!r} does not exist: list them with ListExperiments")
        return entry

    def get(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            return _copy(entry.experiment)

    def list_experiments(
        self, page_size: int, page_token: str
    ) -> tuple[list[experiments_pb2.Experiment], str]:
        with self._lock:
            items = [_copy(self._entries[k].experiment) for k in sorted(self._entries)]
        return paging.paginate("experiments", items, page_size, page_token)

    def list_rounds(
        self, parent: str, page_size: int, page_token: str
    ) -> tuple[list[experiments_pb2.Round], str]:
        entry = self._entry(parent)
        with self._lock:
            items = [_copy(r.round) for r in entry.rounds]
        return paging.paginate(f"{parent}/rounds", items, page_size, page_token)

    # Create -----------------------------------------------------------------------------------

    def create(
        self,
        experiment_id: str,
        display_name: str,
        config: experiments_pb2.ExperimentConfig,
        start: bool = False,
    ) -> experiments_pb2.Experiment:
        check_config(config)
        if experiment_id:
            names.check_id(experiment_id, "experiment_id")
        else:
            experiment_id = names.new_id("exp-")
        name = f"experiments/{experiment_id}"
        if experiment_id in self._entries or self.records.experiment_exists(experiment_id):
            raise AlreadyExists(f"{name} already exists: choose another experiment_id")
        try:
            view = fetch_view(self.stubs.store, self.store, config.dataset, labeler_for(config).truth_column)
        except NotFound as error:
            raise NotFound(
                f"dataset {config.dataset!r} does not exist: create it first (CreateDataset); {error}"
            ) from None
        check_against_dataset(config, view)
        stamp = now()
        experiment = experiments_pb2.Experiment(
            name=name,
            display_name=display_name or experiment_id,
            config=config,
            state=CREATED,
            annotation_set=experiment_id,  # each experiment keeps its own annotation log
            create_time=stamp,
            update_time=stamp,
        )
        with self._lock:
            if experiment_id in self._entries:
                raise AlreadyExists(f"{name} already exists: choose another experiment_id")
            entry = Entry(experiment, [], self.records, self._lock)
            self._entries[experiment_id] = entry
            entry.commit()
        log.info("created %s on %s", name, config.dataset)
        return self.start(name) if start else self.get(name)

    # Control ----------------------------------------------------------------------------------

    def start(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state == RUNNING:
                return _copy(entry.experiment)  # starting twice is harmless
            if entry.state != CREATED:
                raise FailedPrecondition(
                    f"{name} is {state_name(entry.state)}: only a CREATED experiment can be started "
                    "(use ResumeExperiment for a paused one)"
                )
            first = RoundRecord.first_step(name, 0)
            entry.experiment.state = RUNNING
            entry.experiment.current_round = 0
            entry.experiment.current_stage = experiments_pb2.ROUND_STAGE_SNAPSHOT
            entry.commit(first)
            self.runners.spawn(entry)
            return _copy(entry.experiment)

    def pause(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state == PAUSED:
                return _copy(entry.experiment)
            if entry.state != RUNNING:
                raise FailedPrecondition(f"{name} is {state_name(entry.state)}: only a RUNNING one can pause")
            entry.experiment.state = PAUSED  # the runner stops after the step in progress
            entry.experiment.status_message = "paused"
            entry.commit()
            metrics.EXPERIMENT_STATE.labels(entry.id).set(0)
            return _copy(entry.experiment)

    def resume(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state == RUNNING:
                return _copy(entry.experiment)
            if entry.state != PAUSED:
                raise FailedPrecondition(
                    f"{name} is {state_name(entry.state)}: only a PAUSED experiment can be resumed"
                )
            entry.experiment.state = RUNNING
            entry.experiment.status_message = ""
            entry.commit()
            self.runners.spawn(entry)
            return _copy(entry.experiment)

    def cancel(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state in TERMINAL_EXPERIMENT_STATES:
                raise FailedPrecondition(f"{name} already ended ({state_name(entry.state)})")
            entry.experiment.state = CANCELLED
            entry.experiment.status_message = "cancelled"
            entry.commit()
            metrics.EXPERIMENT_STATE.labels(entry.id).set(0)
            operation = _running_operation(entry)
        if operation:
            self._cancel_operation(operation)
        return self.get(name)

    def _cancel_operation(self, operation: str) -> None:
        try:
            call(
                self.stubs.trainer.CancelOperation,
                trainer_pb2.CancelOperationRequest(name=operation),
                what=f"cancelling {operation}",
                retry_seconds=10,
            )
        except Exception as error:  # the experiment is cancelled either way; the runner ignores the op
            log.warning("could not cancel %s: %s", operation, error)

    # Watch ------------------------------------------------------------------------------------

    def watch(
        self, name: str, active: Callable[[], bool]
    ) -> Iterator[tuple[experiments_pb2.Experiment, experiments_pb2.Round]]:
        """Yields the experiment and its current round on every change, until it ends or the
        client leaves."""
        entry = self._entry(name)
        seen = -1
        while active():
            with self._lock:
                if entry.version == seen:
                    self._lock.wait(timeout=1.0)
                    if entry.version == seen:
                        continue
                seen = entry.version
                experiment, current = _copy(entry.experiment), _copy(entry.current_round())
            yield experiment, current
            if experiment.state in TERMINAL_EXPERIMENT_STATES:
                return


def _running_operation(entry: Entry) -> str:
    """The trainer operation the current step waits for, if any: a training run, or round 0's
    embedding run for a typical first set. Lock held."""
    record = entry.round(entry.experiment.current_round)
    if record is None:
        return ""
    if record.round.stage == experiments_pb2.ROUND_STAGE_TRAIN:
        return record.round.training_operation
    if record.round.stage == experiments_pb2.ROUND_STAGE_SNAPSHOT and not record.initial_ids:
        return record.embedding_operation
    return ""


def _restore_gauges(experiment: experiments_pb2.Experiment) -> None:
    """After a restart, the gauges start where the persisted experiment stands."""
    experiment_id = experiment.name.removeprefix("experiments/")
    metrics.EXPERIMENT_STATE.labels(experiment_id).set(int(experiment.state == RUNNING))
    metrics.EXPERIMENT_LABELED.labels(experiment_id).set(experiment.labeled_count)
    metrics.EXPERIMENT_ROUNDS.labels(experiment_id).set(experiment.rounds_completed)
    if experiment.rounds_completed or experiment.current_stage > experiments_pb2.ROUND_STAGE_EVALUATE:
        metrics.EXPERIMENT_TEST_ACCURACY.labels(experiment_id).set(experiment.latest_test_accuracy)
    budget = experiment.config.stopping_rule.label_budget
    if budget:
        metrics.EXPERIMENT_BUDGET_LEFT.labels(experiment_id).set(budget - experiment.labels_used)


def _copy(message: M) -> M:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
