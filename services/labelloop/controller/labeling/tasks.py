"""The task board: each round's batch as tasks, the leases handed out on them, and who was given what.

One board per controller process, shared by LabelingService (people lease, submit, skip) and the
labeling-queue labeler (which opens a round's tasks and closes them when the round goes on). Every
change is written to the object store (one JSON per round, core/layout.labeling_tasks_key) before it
is answered, so a restarted controller hands out nothing twice and forgets no lease.

Labels themselves are not kept here: they go to the experiment's annotation log (the one record of
labels), which also makes the board blind by construction.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from labelloop.core import layout
from labelloop.core.errors import FailedPrecondition, NotFound
from labelloop.core.storage import ObjectStore
from labelloop.v1 import labeling_pb2

LEASED, SKIPPED, LABELED = "leased", "skipped", "labeled"

OPEN = labeling_pb2.TASK_STATE_OPEN
HELD = labeling_pb2.TASK_STATE_LEASED
DONE = labeling_pb2.TASK_STATE_DONE
CLOSED = labeling_pb2.TASK_STATE_CLOSED


@dataclass(frozen=True)
class ExamplePrediction:
    """The round model's opinion of an example when the round selected it."""

    label: str
    confidence: float
    score: float | None  # the strategy's score (lower was chosen first); None when not scored
    model: str  # "experiments/{e}/rounds/{n}"
    probabilities: dict[str, float]


@dataclass
class Lease:
    lease_id: str
    annotator: str
    expire: float  # epoch seconds
    state: str = LEASED  # LEASED, then SKIPPED or LABELED
    request_id: str = ""  # the caller's request id of the submission
    reason: str = ""  # why it was skipped

    def holds(self, now: float) -> bool:
        return self.state == LEASED and self.expire > now


@dataclass
class TaskRecord:
    example_id: str
    features: dict[str, str] = field(default_factory=dict)
    image_key: str = ""
    prediction: ExamplePrediction | None = None
    # Annotators who labeled the example before this round: never offered it again.
    given: list[str] = field(default_factory=list)
    leases: list[Lease] = field(default_factory=list)
    # New labels of the example in the annotation log, as the labeler last counted them (labels can
    # also come from outside the queue, through AppendAnnotations).
    labels_logged: int = 0

    def received(self) -> int:
        labeled = {lease.annotator for lease in self.leases if lease.state == LABELED}
        return max(len(labeled), self.labels_logged)

    def holders(self, now: float) -> int:
        return sum(lease.holds(now) for lease in self.leases)

    def was_given_to(self, annotator: str) -> bool:
        return annotator in self.given or any(lease.annotator == annotator for lease in self.leases)

    def lease(self, lease_id: str) -> Lease | None:
        return next((lease for lease in self.leases if lease.lease_id == lease_id), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskRecord:
        prediction = data.get("prediction")
        return cls(
            example_id=data["example_id"],
            features=dict(data.get("features", {})),
            image_key=data.get("image_key", ""),
            prediction=ExamplePrediction(**prediction) if prediction else None,
            given=list(data.get("given", [])),
            leases=[Lease(**lease) for lease in data.get("leases", [])],
            labels_logged=int(data.get("labels_logged", 0)),
        )


@dataclass
class RoundTasks:
    """One batch of a round, most useful (lowest score) first: the round's selection, or round 0's
    first labeled set (first_set), which round 0 labels before its own selection."""

    experiment_id: str
    round: int
    labels_wanted: int  # from distinct annotators, per example
    lease_seconds: float
    classes: list[str]
    tasks: list[TaskRecord]
    closed: bool = False
    first_set: bool = False

    @property
    def key(self) -> BatchKey:
        return (self.round, self.first_set)

    @property
    def batch(self) -> str:
        return "initial" if self.first_set else "selected"

    def __post_init__(self) -> None:
        self._index = {task.example_id: task for task in self.tasks}

    def task(self, example_id: str) -> TaskRecord | None:
        return self._index.get(example_id)

    def state(self, task: TaskRecord, now: float) -> int:
        received = task.received()
        if received >= self.labels_wanted:
            return DONE
        if self.closed:
            return CLOSED
        return HELD if received + task.holders(now) >= self.labels_wanted else OPEN

    def awaited(self) -> int:
        """Labels still wanted by this round's tasks (0 once closed)."""
        if self.closed:
            return 0
        return sum(max(0, self.labels_wanted - task.received()) for task in self.tasks)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "round": self.round,
            "labels_wanted": self.labels_wanted,
            "lease_seconds": self.lease_seconds,
            "classes": self.classes,
            "closed": self.closed,
            "first_set": self.first_set,
            "tasks": [task.to_json() for task in self.tasks],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundTasks:
        return cls(
            experiment_id=data["experiment_id"],
            round=int(data["round"]),
            labels_wanted=int(data["labels_wanted"]),
            lease_seconds=float(data["lease_seconds"]),
            classes=list(data["classes"]),
            tasks=[TaskRecord.from_json(task) for task in data["tasks"]],
            closed=bool(data.get("closed", False)),
            first_set=bool(data.get("first_set", False)),
        )


# (round, first_set): a round's selection, or round 0's first labeled set.
BatchKey = tuple[int, bool]


def newest_first(key: BatchKey) -> tuple[int, bool]:
    """Rounds newest first; in round 0 its selection before its (older) first set."""
    return (-key[0], key[1])


@dataclass(frozen=True)
class Given:
    """A task and the lease on it that a caller named."""

    round: RoundTasks
    task: TaskRecord
    lease: Lease


class TaskBoard:
    def __init__(self, store: ObjectStore, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock
        self._lock = threading.RLock()
        self._rounds: dict[str, dict[BatchKey, RoundTasks]] = {}
        self._labels_taken: dict[str, int] = {}  # per experiment, for labelers that poll the log

    # Persistence ------------------------------------------------------------------------------

    def _of(self, experiment_id: str) -> dict[BatchKey, RoundTasks]:
        """The experiment's rounds, read from the store on first use. Lock held."""
        rounds = self._rounds.get(experiment_id)
        if rounds is None:
            rounds = {}
            for key in self.store.list(layout.labeling_tasks_prefix(experiment_id)):
                if key.endswith(".json"):
                    loaded = RoundTasks.from_json(self.store.get_json(key))
                    rounds[loaded.key] = loaded
            self._rounds[experiment_id] = rounds
        return rounds

    def _save(self, tasks: RoundTasks) -> None:
        key = layout.labeling_tasks_key(tasks.experiment_id, tasks.round, tasks.batch)
        self.store.put_json(key, tasks.to_json())

    # The labeler's side -----------------------------------------------------------------------

    def open_round(self, tasks: RoundTasks) -> RoundTasks:
        """Puts a round's tasks on the board; a replayed round keeps the tasks (and leases) it has."""
        with self._lock:
            rounds = self._of(tasks.experiment_id)
            existing = rounds.get(tasks.key)
            if existing is not None:
                return existing
            self._save(tasks)
            rounds[tasks.key] = tasks
            return tasks

    def batch(self, experiment_id: str, key: BatchKey) -> RoundTasks | None:
        with self._lock:
            return self._of(experiment_id).get(key)

    def observe(self, experiment_id: str, key: BatchKey, new_labels: Mapping[str, int]) -> None:
        """Records the new labels per example that the annotation log holds (from any source)."""
        with self._lock:
            tasks = self._of(experiment_id).get(key)
            if tasks is None:
                return
            changed = False
            for task in tasks.tasks:
                count = max(0, new_labels.get(task.example_id, 0))
                if count != task.labels_logged:
                    task.labels_logged, changed = count, True
            if changed:
                self._save(tasks)

    def close(self, experiment_id: str, key: BatchKey) -> None:
        """Nobody may lease the batch's tasks any more; leases already given may still submit."""
        with self._lock:
            tasks = self._of(experiment_id).get(key)
            if tasks is not None and not tasks.closed:
                tasks.closed = True
                self._save(tasks)

    def close_experiment(self, experiment_id: str) -> None:
        with self._lock:
            for key in list(self._of(experiment_id)):
                self.close(experiment_id, key)

    # The annotators' side ---------------------------------------------------------------------

    def lease(self, experiment_id: str, annotator: str, max_tasks: int) -> list[Given]:
        """Up to max_tasks tasks this annotator was never given, most useful first, each with fewer
        holders than the labels it still wants."""
        now = self.clock()
        given: list[Given] = []
        with self._lock:
            for tasks in sorted(self._of(experiment_id).values(), key=lambda t: (t.round, not t.first_set)):
                if tasks.closed:
                    continue
                taken: list[Given] = []
                for task in tasks.tasks:
                    if len(given) + len(taken) >= max_tasks:
                        break
                    if tasks.state(task, now) != OPEN or task.was_given_to(annotator):
                        continue
                    lease = Lease(secrets.token_hex(12), annotator, now + tasks.lease_seconds)
                    task.leases.append(lease)
                    taken.append(Given(tasks, task, lease))
                if taken:
                    self._save(tasks)
                    given.extend(taken)
        return given

    def held(self, experiment_id: str, number: int, example_id: str, lease_id: str, annotator: str) -> Given:
        """The caller's lease on a task; NotFound / FailedPrecondition saying what to do otherwise."""
        with self._lock:
            batches = [self._of(experiment_id).get((number, first)) for first in (False, True)]
            found = [(b, t) for b in batches if b is not None and (t := b.task(example_id)) is not None]
            if not found:
                raise NotFound(
                    f"experiments/{experiment_id}/rounds/{number}/tasks/{example_id} does not exist: "
                    "use the task names LeaseTasks or ListTasks return"
                )
            # Round 0 may hold an example twice (first set, then re-labeled): the lease tells which.
            leased = [(b, t, lease) for b, t in found if (lease := t.lease(lease_id)) is not None]
            if not leased:
                raise FailedPrecondition(
                    f"lease {lease_id!r} is not a lease of this task: pass the lease_id LeaseTasks "
                    "returned with it"
                )
            tasks, task, lease = leased[0]
            if lease.annotator != annotator:
                raise FailedPrecondition(
                    f"lease {lease_id!r} was given to another annotator, not {annotator!r}: submit "
                    "under the annotator id you leased with"
                )
            return Given(tasks, task, lease)

    def mark_labeled(self, given: Given, request_id: str) -> None:
        """Records a submission the annotation log has stored."""
        with self._lock:
            if given.lease.state != LABELED:
                given.lease.state = LABELED
                given.lease.request_id = request_id
                self._save(given.round)
            experiment_id = given.round.experiment_id
            self._labels_taken[experiment_id] = self._labels_taken.get(experiment_id, 0) + 1

    def labels_taken(self, experiment_id: str) -> int:
        """Submissions taken in this process (a count that only grows): a labeler waiting on the
        annotation log re-reads it when this changed, instead of on every poll."""
        with self._lock:
            return self._labels_taken.get(experiment_id, 0)

    def skip(self, given: Given, reason: str) -> None:
        with self._lock:
            if given.lease.state == LABELED:
                raise FailedPrecondition(
                    f"lease {given.lease.lease_id!r} already labeled this task: a submitted label "
                    "cannot be skipped"
                )
            if given.lease.state != SKIPPED:
                given.lease.state = SKIPPED
                given.lease.reason = reason
                self._save(given.round)

    # Reading ----------------------------------------------------------------------------------

    def tasks(self, experiment_id: str) -> Iterator[tuple[RoundTasks, TaskRecord]]:
        """Every task of the experiment, newest round first, each round most useful first."""
        with self._lock:
            rounds = sorted(self._of(experiment_id).values(), key=lambda t: newest_first(t.key))
            listed = [(tasks, task) for tasks in rounds for task in tasks.tasks]
        yield from listed

    def awaited(self, experiment_id: str) -> int:
        with self._lock:
            return sum(tasks.awaited() for tasks in self._of(experiment_id).values())


_BOARDS: weakref.WeakKeyDictionary[ObjectStore, TaskBoard] = weakref.WeakKeyDictionary()
_BOARDS_LOCK = threading.Lock()


def shared_board(store: ObjectStore) -> TaskBoard:
    """The one board of this process for a store: LabelingService and the labelers share it."""
    with _BOARDS_LOCK:
        board = _BOARDS.get(store)
        if board is None:
            board = _BOARDS[store] = TaskBoard(store)
        return board
