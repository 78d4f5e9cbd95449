"""One experiment in memory: its working record and rounds (behind the shared lock), and the view that
readers see (behind its own condition, so Get, List and Watch never wait for a write).

Write, then publish: a change is persisted before it becomes visible, so what a client sees is what a
restart would resume. The only exception are progress fields (a round's progress_message and
labels_awaited), which are announced at once and persisted with the step's next commit.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from labelloop.controller import stops
from labelloop.controller.records import RecordStore, RoundRecord, now
from labelloop.core import metrics
from labelloop.core.errors import Unavailable
from labelloop.core.faults import describe, is_transient, retry
from labelloop.v1 import experiments_pb2

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

FAILED = experiments_pb2.EXPERIMENT_STATE_FAILED
# How long a write of the experiment's record is retried before the experiment stops on the fault.
DEFAULT_WRITE_RETRY_SECONDS = 60.0
# Between attempts to record that an experiment stopped on a fault, while storage is down.
FAULT_RECORD_INTERVAL_SECONDS = 2.0


class Entry:
    """An experiment's in-memory state. Change it with `lock` held, then commit (runner steps) or
    update (API calls): both write before they publish."""

    def __init__(
        self,
        experiment: experiments_pb2.Experiment,
        rounds: list[RoundRecord],
        records: RecordStore,
        changed: threading.Condition,
        views: threading.Condition | None = None,
        write_retry_seconds: float = DEFAULT_WRITE_RETRY_SECONDS,
    ):
        self.experiment = experiment
        self.rounds = rounds
        self.records = records
        self.lock = changed
        self.views = views or threading.Condition()
        self.write_retry_seconds = write_retry_seconds
        self.version = 0  # of the published view, bumped on every publish; watchers wait for it to move
        self.thread: threading.Thread | None = None  # the runner, while one is alive
        self.unsaved: set[int] = set()  # rounds whose latest state a failed write left unstored
        self.fault_unrecorded = False  # stopped on a fault that storage has not taken yet
        self._stored = b""  # the experiment as last written, less update_time (_content)
        self._view = _copy(experiment)
        self._round_views = [_copy(r.round) for r in rounds]

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

    # What readers see (views lock only) ------------------------------------------------------

    def view(self) -> experiments_pb2.Experiment:
        with self.views:
            return _copy(self._view)

    def round_views(self) -> list[experiments_pb2.Round]:
        with self.views:
            return [_copy(r) for r in self._round_views]

    def current_round_view(self) -> experiments_pb2.Round:
        """Views lock held by the caller (or taken here)."""
        with self.views:
            number = self._view.current_round
            return (
                _copy(self._round_views[number])
                if number < len(self._round_views)
                else experiments_pb2.Round()
            )

    # Changes (lock held) ---------------------------------------------------------------------

    def commit(self, *changed: RoundRecord) -> None:
        """A runner step's commit: persists the given rounds (and any a failed write left), then the
        experiment, then publishes. Caller holds the lock.

        A write that keeps failing on a fault past the retries stops the experiment on that fault:
        FAILED (resumable) in memory, recorded once storage answers, and StoppedOnFault raised so the
        runner stops (not when it was recording a failure already: the failure stands).
        """
        for record in changed:
            number = record.round.number
            if number == len(self.rounds):
                self.rounds.append(record)
            self.rounds[number] = record
        if self.experiment.state == FAILED:  # fail() runs in the runner's `except` clause
            stops.record_failure(self.experiment, sys.exc_info()[1])
        try:
            self._write([r.round.number for r in changed], self.write_retry_seconds)
        except Exception as error:
            if not is_transient(error):
                raise
            failing = self.experiment.state == FAILED
            if not failing:
                stops.stop_on_fault(self.experiment, error)
            self._record_fault_later(error)
            if not failing:
                raise stops.StoppedOnFault(self.experiment.status_message) from None

    def update(self, change: Callable[[experiments_pb2.Experiment], None], *added: RoundRecord) -> None:
        """An API call's change of the experiment (and new rounds): applied, written, then published;
        if the write fails, the change is undone and the caller gets UNAVAILABLE. Lock held."""
        before, rounds_before = _copy(self.experiment), list(self.rounds)
        change(self.experiment)
        for record in added:
            if record.round.number == len(self.rounds):
                self.rounds.append(record)
            self.rounds[record.round.number] = record
        try:
            self._write([r.round.number for r in added], self.write_retry_seconds)
        except Exception as error:
            self.experiment.CopyFrom(before)
            self.rounds[:] = rounds_before
            self.unsaved &= set(range(len(self.rounds)))
            if is_transient(error):
                raise Unavailable(
                    f"{self.experiment.name} is unchanged: its record cannot be written now "
                    f"({describe(error)}); try again once storage answers"
                ) from None
            raise

    def touch(self) -> None:
        """Announces progress fields of the current round (persisted with the next commit)."""
        record = self.round(self.experiment.current_round)
        with self.views:
            number = self._view.current_round
            if record is not None and number == record.round.number and number < len(self._round_views):
                shown = self._round_views[number]
                shown.progress_message = record.round.progress_message
                shown.labels_awaited = record.round.labels_awaited
                shown.training_epoch = record.round.training_epoch
                shown.training_max_epochs = record.round.training_max_epochs
            self._announce()

    def _write(self, changed: list[int], retry_seconds: float) -> None:
        numbers = sorted(set(changed) | self.unsaved)
        self.unsaved.update(numbers)  # until they are written
        # Most steps change only their round: the experiment is rewritten (and its update_time moved)
        # only when something else in it changed, which saves a write on most of a round's commits
        # (metadata in one object per step).
        content = _content(self.experiment)
        experiment_changed = content != self._stored
        if experiment_changed:
            self.experiment.update_time.CopyFrom(now())

        def write() -> None:
            for number in numbers:
                self.records.save_round(self.id, self.rounds[number])
            if experiment_changed:
                self.records.save_experiment(self.experiment)

        def warn(error: BaseException, delay: float) -> None:
            log.warning("writing %s: %s; retrying in %.1fs", self.experiment.name, describe(error), delay)

        retry(write, retry_seconds, on_retry=warn)
        self._stored = content
        self.unsaved.clear()
        self.fault_unrecorded = False
        # Everything in memory is stored now: the current round too (e.g. clearing a fault's note).
        current = self.experiment.current_round
        self._publish(sorted({*numbers, current} if current < len(self.rounds) else set(numbers)))

    def _publish(self, numbers: list[int]) -> None:
        with self.views:
            self._view = _copy(self.experiment)
            for number in numbers:
                shown = _copy(self.rounds[number].round)
                if number < len(self._round_views):
                    self._round_views[number] = shown
                else:
                    self._round_views.append(shown)
            self._announce()

    def _announce(self) -> None:
        """Views lock held."""
        self.version += 1
        self.views.notify_all()

    def _record_fault_later(self, error: BaseException) -> None:
        """Tells readers the experiment is stopping, and records it once storage answers. Lock held."""
        log.error("%s stopped on a fault: %s", self.experiment.name, describe(error))
        metrics.EXPERIMENT_STATE.labels(self.id).set(0)
        with self.views:
            number = self._view.current_round
            if number < len(self._round_views):
                self._round_views[number].progress_message = (
                    f"storage unavailable ({describe(error, 120)}): stopping on this fault; the experiment "
                    "shows FAILED once that can be recorded"
                )
            self._announce()
        if not self.fault_unrecorded:
            self.fault_unrecorded = True
            threading.Thread(target=self._record_fault, name=f"record-fault-{self.id}", daemon=True).start()

    def _record_fault(self) -> None:
        while True:
            time.sleep(FAULT_RECORD_INTERVAL_SECONDS)
            with self.lock:
                if not self.fault_unrecorded:  # a later write (e.g. ResumeExperiment) recorded it
                    return
                try:
                    self._write([], retry_seconds=0)
                except Exception as error:
                    log.warning(
                        "%s: still cannot record the fault: %s", self.experiment.name, describe(error)
                    )
                    continue
                log.info("%s: recorded that it stopped on a fault", self.experiment.name)
                self.lock.notify_all()
                return


def _content(experiment: experiments_pb2.Experiment) -> bytes:
    """What a change of the experiment's record is judged by: not update_time (it follows the change),
    nor current_stage (the current round's record holds it, and recovery takes it from there)."""
    clone = _copy(experiment)
    clone.ClearField("update_time")
    clone.ClearField("current_stage")
    return clone.SerializeToString(deterministic=True)


def _copy(message: M) -> M:
    clone = type(message)()
    clone.CopyFrom(message)
    return clone
