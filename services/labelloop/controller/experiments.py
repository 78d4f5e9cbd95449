"""The Experiments domain class: create, control and watch experiments (threads.py runs them).

The working state sits behind one condition variable; every change is persisted before it is
published (entry.py), so what a client sees is never ahead of what a restart would resume. Reads
(Get, List, ListRounds, Watch) use the published views only: they never wait for a write, even one
that retries while storage is down.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator

from labelloop.controller.clients import Stubs, call
from labelloop.controller.dataset import fetch_view
from labelloop.controller.entry import DEFAULT_WRITE_RETRY_SECONDS, Entry
from labelloop.controller.labelers import labeler_for
from labelloop.controller.records import RecordStore, RoundRecord, now
from labelloop.controller.threads import Runners
from labelloop.controller.validation import check_against_dataset, check_config, check_display_name
from labelloop.core import layout, metrics, names, paging
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES, enum_name
from labelloop.core.errors import AlreadyExists, FailedPrecondition, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2, trainer_pb2

log = logging.getLogger(__name__)

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
PAUSED = experiments_pb2.EXPERIMENT_STATE_PAUSED
CREATED = experiments_pb2.EXPERIMENT_STATE_CREATED
CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED
FAILED = experiments_pb2.EXPERIMENT_STATE_FAILED
FAULT = experiments_pb2.FAILURE_KIND_FAULT
# Seconds a write of an experiment's record is retried before the experiment stops on the fault.
WRITE_RETRY_ENV = "LABELLOOP_CONTROLLER_WRITE_RETRY_SECONDS"
# Seconds DeleteExperiment waits for a cancelled experiment's runner to finish its step.
DELETE_WAIT_SECONDS = 30.0


def state_name(state: int) -> str:
    return enum_name(experiments_pb2.ExperimentState, state).upper()


class Experiments:
    def __init__(
        self,
        store: ObjectStore,
        stubs: Stubs,
        poll_seconds: float = 0.2,
        crash_at: str = "",
        write_retry_seconds: float | None = None,
    ):
        self.store = store
        self.stubs = stubs
        self.records = RecordStore(store)
        self.runners = Runners(store, stubs, poll_seconds, crash_at)
        self._lock = threading.Condition()
        self._views = threading.Condition()  # readers wait on this one, never on _lock
        self._entries: dict[str, Entry] = {}
        if write_retry_seconds is None:
            write_retry_seconds = float(os.environ.get(WRITE_RETRY_ENV, DEFAULT_WRITE_RETRY_SECONDS))
        self.write_retry_seconds = write_retry_seconds

    def _new_entry(self, experiment: experiments_pb2.Experiment, rounds: list[RoundRecord]) -> Entry:
        return Entry(experiment, rounds, self.records, self._lock, self._views, self.write_retry_seconds)

    # Start-up ---------------------------------------------------------------------------------

    def recover(self) -> None:
        """Loads every experiment and resumes those that were running when the controller stopped."""
        for experiment_id in sorted(self.records.experiment_ids()):
            experiment = self.records.load_experiment(experiment_id)
            rounds = self.records.load_rounds(experiment_id, experiment.current_round + 1)
            # The current round's record holds the stage; the experiment's may be older (entry._content).
            current = [r for r in rounds if r.round.number == experiment.current_round]
            if current:
                experiment.current_stage = current[0].round.stage
            entry = self._new_entry(experiment, rounds)
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
        return self._entry(name).view()

    def list_experiments(
        self, page_size: int, page_token: str
    ) -> tuple[list[experiments_pb2.Experiment], str]:
        entries = dict(self._entries)  # a copy: create() may add one meanwhile
        items = [entries[k].view() for k in sorted(entries)]
        return paging.paginate("experiments", items, page_size, page_token)

    def list_rounds(
        self, parent: str, page_size: int, page_token: str
    ) -> tuple[list[experiments_pb2.Round], str]:
        items = self._entry(parent).round_views()
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
        check_display_name(display_name)
        if experiment_id:
            names.check_id(experiment_id, "experiment_id")
        else:
            experiment_id = names.new_id("exp-")
        name = f"experiments/{experiment_id}"
        if self.store.exists(layout.deleted_experiment_key(experiment_id)):
            raise AlreadyExists(
                f"{name} was deleted, and its id stays taken (its trainer runs and snapshots carry it): "
                "choose another experiment_id"
            )
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
            entry = self._new_entry(experiment, [])
            entry.update(lambda _: None)  # written before anyone can see it
            self._entries[experiment_id] = entry
        log.info("created %s on %s", name, config.dataset)
        return self.start(name) if start else self.get(name)

    # Control ----------------------------------------------------------------------------------

    def start(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state == RUNNING:
                return entry.view()  # starting twice is harmless
            if entry.state != CREATED:
                raise FailedPrecondition(
                    f"{name} is {state_name(entry.state)}: only a CREATED experiment can be started "
                    "(use ResumeExperiment for a paused one)"
                )

            def start(experiment: experiments_pb2.Experiment) -> None:
                experiment.state = RUNNING
                experiment.current_round = 0
                experiment.current_stage = experiments_pb2.ROUND_STAGE_SNAPSHOT

            entry.update(start, RoundRecord.first_step(name, 0))
            self.runners.spawn(entry)
            return entry.view()

    def pause(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state == PAUSED:
                return entry.view()
            if entry.state != RUNNING:
                raise FailedPrecondition(f"{name} is {state_name(entry.state)}: only a RUNNING one can pause")
            # The runner stops after the step in progress.
            entry.update(lambda experiment: _set(experiment, PAUSED, "paused"))
            metrics.EXPERIMENT_STATE.labels(entry.id).set(0)
            return entry.view()

    def resume(self, name: str) -> experiments_pb2.Experiment:
        """Runs a PAUSED experiment again, or one that stopped on a fault (FAILED, failure_kind FAULT):
        its step in progress is replayed, and steps are idempotent (request ids), so no finished
        effect is repeated."""
        entry = self._entry(name)
        with self._lock:
            if entry.state == RUNNING:
                return entry.view()
            if entry.state == FAILED and entry.experiment.failure_kind != FAULT:
                raise FailedPrecondition(
                    f"{name} FAILED for good, not on a passing fault, so resuming would fail again: "
                    f"{entry.experiment.status_message}"
                )
            if entry.state not in (PAUSED, FAILED):
                raise FailedPrecondition(
                    f"{name} is {state_name(entry.state)}: only a PAUSED experiment, or one that "
                    "stopped on a fault (FAILED with failure_kind FAULT), can be resumed"
                )
            entry.update(lambda experiment: _set(experiment, RUNNING, ""))
            log.info("resumed %s at round %d", name, entry.experiment.current_round)
            self.runners.spawn(entry)
            return entry.view()

    def cancel(self, name: str) -> experiments_pb2.Experiment:
        entry = self._entry(name)
        with self._lock:
            if entry.state in TERMINAL_EXPERIMENT_STATES:
                raise FailedPrecondition(f"{name} already ended ({state_name(entry.state)})")
            entry.update(lambda experiment: _set(experiment, CANCELLED, "cancelled"))
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

    def delete(self, name: str, force: bool = False) -> None:
        """Removes the experiment's folder (records, models, scores, tasks, exports); the id stays
        taken (layout.deleted_experiment_key). A RUNNING or PAUSED one needs force: it is cancelled
        first, and deleted once its runner has finished the step in progress."""
        entry = self._entry(name)
        if entry.state in (RUNNING, PAUSED):
            if not force:
                raise FailedPrecondition(
                    f"{name} is {state_name(entry.state)}: cancel it first, or delete it with force "
                    "(labelloop experiments delete --force)"
                )
            self.cancel(name)
        runner = entry.thread
        if runner is not None:
            runner.join(DELETE_WAIT_SECONDS)  # no record write may follow the deletion
            if runner.is_alive():
                raise FailedPrecondition(f"{name} is still finishing its step: delete it again in a minute")
        with self._lock:
            if self._entries.get(entry.id) is not entry:
                raise NotFound(f"experiment {name!r} was deleted meanwhile")
            entry.fault_unrecorded = False  # nor may a stop on a fault be recorded after it (entry.py)
            tombstone = layout.deleted_experiment_key(entry.id)
            self.store.delete(layout.experiment_key(entry.id))  # first: a restart no longer loads it
            self.store.put_json(tombstone, {"name": name, "dataset": entry.experiment.config.dataset})
            removed = [k for k in self.store.list(layout.experiment_prefix(entry.id)) if k != tombstone]
            for key in removed:
                self.store.delete(key)
            del self._entries[entry.id]
        log.info("deleted %s (%d objects)", name, len(removed) + 1)

    # Watch ------------------------------------------------------------------------------------

    def watch(
        self, name: str, active: Callable[[], bool]
    ) -> Iterator[tuple[experiments_pb2.Experiment, experiments_pb2.Round]]:
        """Yields the experiment and its current round on every change, until it ends or the
        client leaves."""
        entry = self._entry(name)
        seen = -1
        while active():
            if self._entries.get(entry.id) is not entry:
                raise NotFound(f"{name} was deleted")
            with self._views:
                if entry.version == seen:
                    self._views.wait(timeout=1.0)
                    if entry.version == seen:
                        continue
                seen = entry.version
                experiment, current = entry.view(), entry.current_round_view()
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


def _set(experiment: experiments_pb2.Experiment, state: int, message: str) -> None:
    experiment.state = state  # type: ignore[assignment]
    experiment.status_message = message
    experiment.failure_kind = experiments_pb2.FAILURE_KIND_UNSPECIFIED
