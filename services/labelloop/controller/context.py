"""What a round runner may use, and nothing more: the experiment's in-memory record (behind its lock),
persistence, the object store, the other services' stubs, a clock, and whether it should stop.

The runner gets this instead of the Experiments class, so that the stages do not depend on how
experiments are created, controlled or run on threads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from labelloop.controller.clients import Interrupted, Stubs
from labelloop.controller.entry import Entry
from labelloop.controller.held_out import KeptRows
from labelloop.controller.records import RoundRecord, stage_key
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2

log = logging.getLogger(__name__)

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
CANCELLED = experiments_pb2.EXPERIMENT_STATE_CANCELLED

# For crash-recovery tests: "{round}:{stage}", e.g. "1:label" (or a substep: "0:embed", "0:initial").
# The controller kills itself (SIGKILL, no shutdown code) at the first commit of that step, after the
# step's requests to other services and before its record is written: the moment a replay after a
# crash must not repeat any effect.
CRASH_AT_ENV = "LABELLOOP_CONTROLLER_CRASH_AT"


class StopRequested(Interrupted):
    """The experiment left RUNNING (paused or cancelled) in the middle of a step."""


@dataclass
class RoundContext:
    entry: Entry
    store: ObjectStore
    stubs: Stubs
    poll_seconds: float = 0.2
    clock: Callable[[], float] = time.time  # wall time, for waits that must survive restarts
    sleep: Callable[[float], None] = time.sleep
    crash_at: str = ""  # see CRASH_AT_ENV
    step: str = field(default="", init=False)  # "{round}:{stage}" of the step in progress
    kept_rows: KeptRows = field(default_factory=KeptRows, init=False)  # earlier rounds' (held_out.py)

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def lock(self) -> threading.Condition:
        return self.entry.lock

    @property
    def experiment(self) -> experiments_pb2.Experiment:
        """The live record: read and change it with the lock held, then commit."""
        return self.entry.experiment

    def round(self, number: int) -> RoundRecord | None:
        return self.entry.round(number)

    def earlier_rounds(self, number: int) -> list[experiments_pb2.Round]:
        with self.lock:
            return [r.round for r in self.entry.rounds[:number]]

    def earlier_records(self, number: int) -> list[RoundRecord]:
        with self.lock:
            return list(self.entry.rounds[:number])

    def commit(self, *changed: RoundRecord) -> None:
        """Persists the changed rounds and the experiment, then wakes watchers. Lock held."""
        if self.crash_at and self.step == self.crash_at:
            log.warning("%s=%s: crashing before the step's commit", CRASH_AT_ENV, self.crash_at)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
        self.entry.commit(*changed)

    def touch(self) -> None:
        """Announces an in-memory change that is not persisted (progress). Lock held."""
        self.entry.touch()

    @contextmanager
    def running_step(self, number: int, stage: int) -> Iterator[None]:
        self.step = f"{number}:{stage_key(stage)}"
        try:
            yield
        finally:
            self.step = ""

    @contextmanager
    def substep(self, name: str) -> Iterator[None]:
        """A part of the step in progress with its own crash point, "{round}:{name}" (e.g. "0:embed"
        inside round 0's snapshot step): its first commit is where CRASH_AT_ENV can kill it."""
        outer = self.step
        self.step = f"{outer.partition(':')[0]}:{name}"
        try:
            yield
        finally:
            self.step = outer

    def interrupted(self) -> bool:
        """True once the experiment left RUNNING: the runner stops after (or inside) the step."""
        return self.entry.state != RUNNING

    def check_cancelled(self) -> None:
        if self.entry.state == CANCELLED:
            raise StopRequested
