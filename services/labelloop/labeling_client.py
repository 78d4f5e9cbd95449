"""The labeling queue from Python: LabelLoopClient's methods for annotators (lease, submit, skip, list)
and `label_queue`, a loop that labels an experiment's tasks with a function until the experiment ends.

    def my_label(task):                     # a person's form, a model, a rule...
        return task.prediction.label or None    # None skips the task

    client.label_queue("digits-team", annotator="alice", label_fn=my_label)

Submissions are retried while the controller is unreachable, with the same request id, so a label is
stored once however often it is sent.
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Callable

import grpc

from labelloop.core.api import TERMINAL_EXPERIMENT_STATES, enum_value
from labelloop.core.paging import all_pages
from labelloop.v1 import experiments_pb2, labeling_pb2, labeling_pb2_grpc

# Codes worth sending a submission again for (the same request id stores it once).
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def experiment_name(value: str) -> str:
    return value if value.startswith("experiments/") else f"experiments/{value}"


def task_state_value(state: str | int) -> int:
    """ "open" / "TASK_STATE_OPEN" / 1 -> 1; "" -> 0 (any state). ValueError naming the states."""
    if isinstance(state, int):
        return state
    if not state:
        return 0
    try:
        return enum_value(labeling_pb2.TaskState, state)
    except ValueError:
        raise ValueError(f"task state {state!r} is not one of open, leased, done, closed") from None


class LabelingMethods:
    """Mixed into LabelLoopClient: needs `labeling` (a LabelingService stub), `timeout` and `get`."""

    labeling: labeling_pb2_grpc.LabelingServiceStub
    timeout: float

    def get(self, experiment: str) -> experiments_pb2.Experiment:  # LabelLoopClient's
        raise NotImplementedError

    def lease_tasks(
        self, experiment: str, annotator: str, max_tasks: int = 1, include_image_bytes: bool = False
    ) -> labeling_pb2.LeaseTasksResponse:
        """Up to max_tasks tasks for this annotator (each with its lease_id), and the labels the
        experiment still waits for; no tasks when nothing is open for this annotator now."""
        request = labeling_pb2.LeaseTasksRequest(
            parent=experiment_name(experiment),
            annotator=annotator,
            max_tasks=max_tasks,
            include_image_bytes=include_image_bytes,
        )
        return self.labeling.LeaseTasks(request, timeout=self.timeout)

    def submit_label(
        self,
        task: labeling_pb2.Task | str,
        label: str,
        *,
        annotator: str,
        lease_id: str = "",
        request_id: str = "",
        retries: int = 5,
    ) -> labeling_pb2.Task:
        """Submits a label for a leased task (a Task from lease_tasks carries its lease_id). Retried
        while the controller is unreachable, with one request id: the label is stored once."""
        name, lease = (
            (task.name, lease_id or task.lease_id) if not isinstance(task, str) else (task, lease_id)
        )
        request = labeling_pb2.SubmitLabelRequest(
            task=name,
            lease_id=lease,
            annotator=annotator,
            label=label,
            request_id=request_id or uuid.uuid4().hex,
        )
        for attempt in range(retries + 1):
            try:
                return self.labeling.SubmitLabel(request, timeout=self.timeout).task
            except grpc.RpcError as error:
                if error.code() not in RETRIED_CODES or attempt == retries:
                    raise
                time.sleep(min(2.0**attempt, 10.0))
        raise AssertionError("unreachable")

    def skip_task(
        self, task: labeling_pb2.Task | str, *, annotator: str, lease_id: str = "", reason: str = ""
    ) -> labeling_pb2.Task:
        """Gives a leased task back unlabeled; this annotator is not offered it again."""
        name, lease = (
            (task.name, lease_id or task.lease_id) if not isinstance(task, str) else (task, lease_id)
        )
        request = labeling_pb2.SkipTaskRequest(task=name, lease_id=lease, annotator=annotator, reason=reason)
        return self.labeling.SkipTask(request, timeout=self.timeout).task

    def list_tasks(
        self, experiment: str, round: int = -1, state: str | int = ""
    ) -> builtins.list[labeling_pb2.Task]:
        """Every task of an experiment (round -1: all rounds, newest first), optionally in one state
        ("open", "leased", "done", "closed"). Nobody's labels are shown (labeling is blind)."""
        parent, state_value = experiment_name(experiment), task_state_value(state)
        return all_pages(
            lambda token: self.labeling.ListTasks(
                labeling_pb2.ListTasksRequest(
                    parent=parent,
                    round=round,
                    state=state_value,  # type: ignore[arg-type]
                    page_size=500,
                    page_token=token,
                ),
                timeout=self.timeout,
            ),
            "tasks",
        )

    def label_queue(
        self,
        experiment: str,
        annotator: str,
        label_fn: Callable[[labeling_pb2.Task], str | None],
        *,
        max_tasks: int = 1,
        include_image_bytes: bool = False,
        poll_seconds: float = 1.0,
        timeout: float | None = None,
    ) -> int:
        """Leases, labels (label_fn returns a class, or None to skip) and submits until the
        experiment ends (or `timeout` seconds pass); returns the number of labels submitted."""
        deadline = None if timeout is None else time.monotonic() + timeout
        submitted = 0
        while deadline is None or time.monotonic() < deadline:
            if self.get(experiment).state in TERMINAL_EXPERIMENT_STATES:
                break
            leased = self.lease_tasks(experiment, annotator, max_tasks, include_image_bytes)
            if not leased.tasks:
                time.sleep(poll_seconds)
                continue
            for task in leased.tasks:
                label = label_fn(task)
                if label is None:
                    self.skip_task(task, annotator=annotator, reason="label_fn gave no label")
                else:
                    self.submit_label(task, label, annotator=annotator)
                    submitted += 1
        return submitted
